import { describe, expect, it } from 'vitest';
import { checkHistory } from '../../soak/check-history.js';
import { compareReplica } from '../../soak/check-replicas.js';
import { History } from '../../soak/history.js';
import { itemKey, ownerKey } from '../../soak/plan.js';
import { soakSchema } from '../../soak/schema.js';

/**
 * The soak's checker must be able to fail: fed a recorded history and a server's final rows, it
 * finds a write the server lost, a delete it lost, a replica that differs, and accepts a write
 * that lost to a newer stamp.
 */

const s = soakSchema('plain');
const owner = ownerKey(0);
const item = itemKey(1);
const created = new Date('2026-01-01T00:00:00.000Z');

function ownerRow(name: string) {
  return { id: owner, name, order: 1, createdAt: created, meta: { v: 1 } };
}

function ownerValues(name: string) {
  return { id: owner, name, order: 1, created_at: created.getTime(), meta: { v: 1 } };
}

/** A history where client 0 inserted the owner, then client `by` changed its name at `hlc`. */
function history(rename: { hlc: string; name: string; status: 'applied' | 'rejected' }[]): History {
  const h = new History();
  h.pushed(0, {
    clientId: 'c0',
    batches: [
      {
        mutationId: 1,
        changes: [
          {
            table: 'owners',
            op: 'insert',
            pk: { id: owner },
            values: ownerValues('a'),
            hlc: '1000000000000-00000-c0',
          },
        ],
      },
    ],
  });
  h.acked({ clientId: 'c0', results: [{ mutationId: 1, status: 'applied' }] });
  rename.forEach((r, i) => {
    h.pushed(1, {
      clientId: 'c1',
      batches: [
        {
          mutationId: i + 1,
          changes: [
            { table: 'owners', op: 'update', pk: { id: owner }, values: { name: r.name }, hlc: r.hlc },
          ],
        },
      ],
    });
    h.acked({ clientId: 'c1', results: [{ mutationId: i + 1, status: r.status }] });
  });
  return h;
}

describe('soak checker', () => {
  it('accepts the newest stamp per column, whatever order the writes came in', () => {
    const h = history([
      { hlc: '1000000000009-00000-c1', name: 'newest', status: 'applied' },
      { hlc: '1000000000005-00000-c1', name: 'older', status: 'applied' },
    ]);
    expect(checkHistory(s, h, { owners: [ownerRow('newest')], items: [] }).violations).toEqual([]);
  });

  it('finds a write the server lost, and ignores a rejected one', () => {
    const h = history([
      { hlc: '1000000000005-00000-c1', name: 'kept', status: 'applied' },
      { hlc: '1000000000009-00000-c1', name: 'refused', status: 'rejected' },
    ]);
    expect(checkHistory(s, h, { owners: [ownerRow('kept')], items: [] }).violations).toEqual([]);
    const lost = checkHistory(s, h, { owners: [ownerRow('a')], items: [] }).violations;
    expect(lost.map((v) => v.kind)).toEqual(['lost-write']);
    expect(lost[0].message).toContain('"kept"');
  });

  it('finds a row the server lost, and one it kept after a delete', () => {
    const h = history([]);
    expect(checkHistory(s, h, { owners: [], items: [] }).violations.map((v) => v.kind)).toEqual([
      'lost-write',
    ]);
    h.pushed(1, {
      clientId: 'c1',
      batches: [
        {
          mutationId: 1,
          changes: [{ table: 'owners', op: 'delete', pk: { id: owner }, hlc: '1000000000009-00000-c1' }],
        },
      ],
    });
    h.acked({ clientId: 'c1', results: [{ mutationId: 1, status: 'applied' }] });
    expect(checkHistory(s, h, { owners: [], items: [] }).violations).toEqual([]);
    expect(checkHistory(s, h, { owners: [ownerRow('a')], items: [] }).violations.map((v) => v.kind)).toEqual([
      'lost-delete',
    ]);
  });

  it('finds a replica that differs from the server by a row or a column', () => {
    const server = { owners: [ownerRow('a')], items: [] };
    expect(compareReplica(s, 'client 0', server, { owners: [ownerRow('a')], items: [] })).toEqual([]);
    const differs = compareReplica(s, 'client 0', server, {
      owners: [ownerRow('b')],
      items: [
        {
          id: item,
          ownerId: owner,
          title: 't',
          qty: 2n ** 60n,
          payload: null,
          dueAt: null,
          tags: [],
          note: null,
        },
      ],
    });
    expect(differs.map((v) => v.message)).toEqual([
      `owners ${owner}: name server="a" client 0="b"`,
      `items ${item}: on client 0, not on the server`,
    ]);
  });
});
