import { describe, expect, it } from 'vitest';
import { sql } from '../../src/index.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import { type ChangeJson, PROTOCOL_VERSION, type ServerMessage } from '../../src/sync/protocol/messages.js';
import type { SyncRules } from '../../src/sync/server/index.js';
import { e2eSchema, fixedKeys } from '../support/sync-fixture.js';
import { helloMessage, postgresAvailable, RawClient, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * An ack that carries the server's rows (a batch rejected, or changes that lost to newer stamps)
 * must take its place in the stream where those rows are current: every change sent before it is
 * in the rows, and what changes after them is sent after it. Else a client applies a newer change
 * and then the older rows over it, and keeps them. The race needs another writer to commit while
 * the rows are being read; a read rule that waits on an advisory lock the test holds makes it
 * happen every time (the real server only: PGlite runs one statement at a time).
 */

const [R] = fixedKeys(1) as [string];
/**
 * Advisory locks are shared by the whole database: each run takes a key of its own, so runs of
 * this file at the same time (other test processes on the server) never wait on each other.
 */
const GATE = 1 + Math.floor(Math.random() * 2 ** 30);

/** Every row passes, once the test lets go of the advisory lock GATE. */
const gateDdl = `CREATE FUNCTION syncline_test_gate() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
  BEGIN PERFORM pg_advisory_xact_lock_shared(${GATE}); RETURN true; END $$`;

const rules: SyncRules<typeof e2eSchema> = {
  items: { read: () => sql`syncline_test_gate()`, write: (_user, row) => row.title !== 'forbidden' },
};

function pushUpdate(clientId: string, mutationId: number, values: ChangeJson['values'], wallMs: number) {
  const hlc = encodeHlc({ wallMs, counter: 0, nodeId: clientId });
  const change: ChangeJson = { table: 'items', op: 'update', pk: { id: R }, values, hlc };
  return { type: 'push', v: PROTOCOL_VERSION, batches: [{ mutationId, changes: [change] }] };
}

/** `qty` of row R as a client holds it after applying `messages` in order, from `start`. */
function qtyAfter(messages: readonly ServerMessage[], start: unknown): unknown {
  let qty = start;
  for (const m of messages) {
    if (m.type === 'changes') {
      for (const c of m.changes) if (c.pk.id === R && c.values?.qty !== undefined) qty = c.values.qty;
    } else if (m.type === 'ack') {
      for (const result of m.results) {
        for (const row of result.rows ?? []) if (row.pk.id === R) qty = row.row?.qty;
      }
    }
  }
  return qty;
}

describe.skipIf(!postgresAvailable)('acks with server rows [postgres]', () => {
  for (const outcome of ['lost', 'rejected'] as const) {
    it(`a change committed while the rows of a ${outcome} batch are read reaches the client after its ack`, async () => {
      const t = await startTestServer(e2eSchema, { driver: 'postgres', rules });
      await t.external(gateDdl);
      await t.external(
        `INSERT INTO items (id, title, qty, done, tags) VALUES ($1, 'first', 0, false, '[]')`,
        [R],
      );
      const clientId = crypto.randomUUID();
      const client = await RawClient.connect(t.url);
      await client.sync(
        helloMessage(e2eSchema, {
          clientId,
          token: await t.token('u1'),
          shapes: [{ id: 'i', table: 'items' }],
        }),
      );
      // A title stamped 30 s ahead: the next update of the title, stamped now, loses to it.
      client.send(pushUpdate(clientId, 1, { title: 'ahead' }, Date.now() + 30_000));
      await client.nextOf('ack');

      const gate = await t.connectExternal();
      await gate.query('SELECT pg_advisory_lock($1)', [GATE]);
      const title = outcome === 'lost' ? 'mine' : 'forbidden';
      client.send(pushUpdate(clientId, 2, { title }, Date.now()));
      // The server is reading the rows for the ack (its snapshot taken), held at the gate.
      await waitFor(
        async () => {
          const [row] = await t.external(
            `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`,
            [GATE],
          );
          return row!.n === 1;
        },
        20_000,
        'the rows of the ack to be read',
      );
      await t.external('UPDATE items SET qty = 7 WHERE id = $1', [R]);
      await t.settled();
      await gate.query('SELECT pg_advisory_unlock($1)', [GATE]);

      const ack = await client.nextOf('ack');
      expect(ack.results[0]).toMatchObject({
        mutationId: 2,
        status: outcome === 'lost' ? 'applied' : 'rejected',
      });
      await client.ping();
      expect(qtyAfter(client.received, 0)).toBe(7);
    });
  }
});
