import { expect, it } from 'vitest';
import { integer, schema, table, text } from '../../src/index.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { ChangeHub, type LogPrunedError } from '../../src/sync/server/change-hub.js';
import { ChangeLogReader, type TickedBatch } from '../../src/sync/server/change-log-reader.js';
import { ServerLog } from '../../src/sync/server/server-log.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';

/**
 * Several servers on one database: another server ticks changes, and a prune (any server's, or
 * `pruneChangeLog({ olderThanMs: 0 })`) deletes them before this server's hub has read them. The
 * hub cannot deliver what is gone; it tells its live subscribers they lost changes (their
 * connections reconnect for a snapshot) and carries on from the oldest change kept, so the server
 * keeps serving. Before, every later read failed on the same gap: the server was wedged, and each
 * of its connections was closed with server_error on its next ping (found by
 * test/sync/several-servers.test.ts pruning from three connections at once).
 */

const notes = table('notes', { id: integer().primaryKey(), body: text().notNull() });
const hubSchema = schema({ notes });

function recorder() {
  const batches: TickedBatch[] = [];
  const lost: LogPrunedError[] = [];
  return {
    batches,
    lost,
    subscriber: {
      deliver: (b: TickedBatch) => batches.push(b),
      drained: async () => {},
      lost: (error: LogPrunedError) => lost.push(error),
    },
  };
}

dialectSuite(
  'a change hub behind a prune',
  (env) => {
    it('drops its subscribers and reads on from the oldest kept change when what it had not read was pruned', async () => {
      const db = await env.open(hubSchema);
      await installCapture(db, hubSchema.tableList);
      const hub = new ChangeHub(new ChangeLogReader(db), new ServerLog({ level: 'silent' }));
      await hub.start();
      const live = recorder();
      await hub.attach(live.subscriber, hub.position);

      // Another server ticks two changes and prunes them before this hub reads.
      const other = new ChangeLogReader(db);
      await db.insert(notes).values({ id: 1, body: 'ticked elsewhere' });
      await db.insert(notes).values({ id: 2, body: 'ticked elsewhere too' });
      await other.readNew();
      await other.prune(new Date(Date.now() + 60_000));
      await db.insert(notes).values({ id: 3, body: 'after the prune' });

      await hub.read();
      expect(live.lost.length, 'the live subscriber told it lost changes').toBe(1);
      expect(live.batches).toEqual([]);
      expect(hub.size).toBe(0);
      const { last } = await other.keptRange();
      expect(hub.position).toBe(last);

      // The hub serves on: a subscriber attached now gets the next change.
      const next = recorder();
      await hub.attach(next.subscriber, hub.position);
      await db.insert(notes).values({ id: 4, body: 'served' });
      await hub.read();
      expect(next.batches.flatMap((b) => b.changes.map((c) => c.pk.id))).toEqual([4]);
      expect(next.lost).toEqual([]);
      await hub.close();
    });
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);
