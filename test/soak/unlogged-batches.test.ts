import { describe, expect, it } from 'vitest';
import { itemKey, ownerKey } from '../../soak/plan.js';
import { soakSchema } from '../../soak/schema.js';
import type { ChangeJson } from '../../src/sync/protocol/messages-client.js';
import { serverDrivers } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';
import { itemValues, type SoakReplay, startSoakReplay } from './soak-replay.js';

/**
 * The soak places a batch that logged nothing where the server applied it, not where its ack
 * was heard. PostgreSQL, 100 seeds on an overloaded machine: three seeds had an applied batch
 * none of whose changes was logged (a delete of a parent already deleted, an update of a deleted
 * row, an update of a row that did not exist yet) whose ack arrived before the ack of a batch
 * another client had committed earlier. The checker placed it by its ack, so the model applied it
 * where the server had not, and reported a lost write the server never made. Each case below is
 * one of those seeds, cut down to the batches that mattered.
 */

const s = soakSchema('plain');
const created = new Date('2026-01-02T00:00:00.000Z');

async function withOwners(driver: (typeof serverDrivers)[number], ...keys: string[]): Promise<SoakReplay> {
  const r = await startSoakReplay(s, driver);
  await r.backend(
    0,
    keys.map((key, i) => ({
      table: 'owners',
      op: 'insert',
      key,
      values: { name: `name-${i}`, order: i, created_at: created, meta: { v: i } },
    })),
  );
  return r;
}

function insertItem(id: string, owner: string, hlc: string): ChangeJson {
  return { table: 'items', op: 'insert', pk: { id }, values: itemValues(id, owner), hlc };
}

/** Checks the history and expects the model to agree with the server; returns the server's rows. */
async function agreed(r: SoakReplay) {
  const { server, violations, notes } = await r.check();
  expect(violations).toEqual([]);
  expect(notes).toEqual([]);
  return server;
}

for (const driver of serverDrivers) {
  describe(`soak: batches that logged nothing (${driver})`, () => {
    it('an update of a child its parent cascaded away goes after the cascade (seed 92)', async () => {
      const [first, second, item] = [ownerKey(1), ownerKey(2), itemKey(12)];
      const r = await withOwners(driver, first, second);
      // Client 0 inserts the item under the first owner; client 2 deletes that owner, which
      // cascades to the item; client 0's move of the item to the second owner then finds it
      // deleted and goes into its image: nothing is logged.
      const insert = await r.push(0, [insertItem(item, first, r.stamp(1, 0))]);
      const cascade = await r.push(2, [
        { table: 'owners', op: 'delete', pk: { id: first }, hlc: r.stamp(2, 2) },
      ]);
      const move = await r.push(0, [
        { table: 'items', op: 'update', pk: { id: item }, values: { owner_id: second }, hlc: r.stamp(3, 0) },
      ]);
      // Client 2's ack is held up: client 0 hears both of its own first.
      r.heard(0, insert);
      r.heard(0, move);
      r.heard(2, cascade);
      expect((await agreed(r)).items).toEqual([]);
      expect(r.place(0, move)).toBeGreaterThan(r.place(2, cascade)!);
    });

    it('an update of a row that did not exist yet goes before its insert (seed 73)', async () => {
      const [owner, item] = [ownerKey(4), itemKey(13)];
      const r = await withOwners(driver, owner);
      // Client 3 updates the row (its own insert of it was rejected) before the server has it:
      // the update is dropped. Client 0's insert of the row, stamped earlier, arrives later.
      const update = await r.push(3, [
        { table: 'items', op: 'update', pk: { id: item }, values: { title: 'client 3' }, hlc: r.stamp(2, 3) },
      ]);
      const insert = await r.push(0, [insertItem(item, owner, r.stamp(1, 0))]);
      // Client 3 was cut off: it hears its ack after client 0 heard its own.
      r.heard(0, insert);
      r.heard(3, update);
      expect((await agreed(r)).items.map((row) => row.title)).toEqual(['title']);
      expect(r.place(3, update)).toBeLessThan(r.place(0, insert)!);
    });

    it('a delete of a parent already deleted goes after the delete that cascaded (seed 67)', async () => {
      const [owner, item] = [ownerKey(5), itemKey(5)];
      const r = await withOwners(driver, owner);
      // Client 2 inserts a child; client 0 deletes the owner, cascading to it; client 4's delete
      // of the owner, stamped later, finds it gone and only moves the tombstone: nothing is logged.
      const insert = await r.push(2, [insertItem(item, owner, r.stamp(1, 2))]);
      const cascade = await r.push(0, [
        { table: 'owners', op: 'delete', pk: { id: owner }, hlc: r.stamp(2, 0) },
      ]);
      const again = await r.push(4, [
        { table: 'owners', op: 'delete', pk: { id: owner }, hlc: r.stamp(3, 4) },
      ]);
      // Client 4 hears its ack first; the others' are held up.
      r.heard(4, again);
      r.heard(2, insert);
      r.heard(0, cascade);
      expect(await agreed(r)).toEqual({ owners: [], items: [] });
      expect(r.place(4, again)).toBeGreaterThan(r.place(0, cascade)!);
    });

    // PGlite runs one transaction at a time: there a batch's reads and its end see the same log.
    it.skipIf(driver === 'pglite')(
      'a delete that found no row goes before an insert that committed while it was applied (seed 54)',
      async () => {
        const [owner, item] = [ownerKey(0), itemKey(9)];
        const r = await withOwners(driver, owner);
        // Client 0's insert of the item was rejected; its delete of it reads the row while client
        // 2's insert (stamped earlier) has not committed yet: it finds no row and stores nothing.
        // Held up before its last statement (the clock's high mark, which its stamp ahead moves,
        // is locked meanwhile), it sees the insert committed by the time it ends.
        const gate = await r.t.connectExternal();
        await gate.query('BEGIN');
        const { rows: held } = await gate.query(
          'SELECT pg_backend_pid() AS pid FROM _syncline_clock WHERE id = 1 FOR UPDATE',
        );
        const deleting = r.push(0, [{ table: 'items', op: 'delete', pk: { id: item }, hlc: r.stamp(2, 0) }]);
        await waitFor(
          async () => {
            const rows = await r.t.external(
              'SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
              [held[0].pid],
            );
            return rows[0]!.n === 1;
          },
          20_000,
          'the delete to wait for the high mark',
        );
        // Stamped behind PostgreSQL's clock, the insert leaves the high mark alone.
        const insert = await r.push(2, [insertItem(item, owner, `${Date.now() - 5_000}-00000-client-2`)]);
        await gate.query('COMMIT');
        const deleted = await deleting;
        // Client 0 hears its ack first.
        r.heard(0, deleted);
        r.heard(2, insert);
        expect((await agreed(r)).items.map((row) => row.id)).toEqual([item]);
        // Its last statement saw the insert, its first did not: the checker chose in between.
        expect(r.place(0, deleted)).toBeGreaterThan(r.place(2, insert)!);
        expect(r.history.ticks.began.get(`client-0:${deleted}`)).toBeLessThan(r.place(2, insert)!);
      },
    );
  });
}
