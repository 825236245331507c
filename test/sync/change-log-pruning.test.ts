import { afterEach, describe, expect, it } from 'vitest';
import { eq } from '../../src/index.js';
import { ChangeLogReader } from '../../src/sync/server/change-log-reader.js';
import {
  closeClients,
  type E2eClient,
  e2eSchema,
  expectConverged,
  fixedKeys,
  items,
  openClients,
  settle,
} from '../support/sync-fixture.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * The change log does not grow forever: the server prunes changes older than
 * `limits.changeRetentionMs` (and `server.pruneChangeLog()` does it at once). A client that was
 * away for longer than that cannot resume from its cursor, so it gets a fresh snapshot, which
 * also takes away rows deleted while it was away; one that was not keeps streaming.
 */

const keys = fixedKeys(8);

for (const driver of serverDrivers) {
  describe(`pruning the change log [${driver}]`, () => {
    let clients: E2eClient[] = [];
    afterEach(() => closeClients(clients));

    it('deletes old ticked changes only, and says which cursor is the oldest it still serves', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      const reader = new ChangeLogReader(t.server.db);
      await t.server.db.insert(items).values(keys.slice(0, 3).map((id) => ({ id, title: 'old' })));
      await waitFor(async () => (await reader.keptRange()).last === 3n, 5000, 'three changes ticked');
      expect((await reader.keptRange()).oldest).toBe(0n);

      expect(await t.server.pruneChangeLog({ olderThanMs: 0 })).toEqual({ changes: 3 });
      expect((await reader.keptRange()).oldest).toBe(3n);
      expect(await reader.readFrom(0n)).toEqual([]);

      await t.server.db.insert(items).values({ id: keys[3]!, title: 'new' });
      await waitFor(async () => (await reader.keptRange()).last === 4n, 5000, 'the fourth change ticked');
      expect(await t.server.pruneChangeLog()).toEqual({ changes: 0 }); // a week's retention keeps it
      expect((await reader.readFrom(3n)).map((c) => c.tick)).toEqual([4n]);
      await expect(t.server.pruneChangeLog({ olderThanMs: -1 })).rejects.toThrow(
        /olderThanMs must be 0 or more/,
      );
    });

    it('a client whose cursor was pruned gets a fresh snapshot; one that kept up streams on', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      clients = await openClients({ port: t.server.port, token: t.token }, 2);
      const [away, online] = clients as [E2eClient, E2eClient];
      await Promise.all(clients.map((c) => c.sync.start()));
      await t.server.db.insert(items).values(keys.slice(0, 4).map((id) => ({ id, title: 'first' })));
      await settle(clients);

      await away.sync.stop();
      // While it is away: a row deleted, one updated, one added; then everything so far is pruned.
      await t.server.db.delete(items).where(eq(items.id, keys[0]!));
      await t.server.db.update(items).set({ title: 'changed' }).where(eq(items.id, keys[1]!));
      await t.server.db.insert(items).values({ id: keys[4]!, title: 'added' });
      await settle([online]);
      const { changes } = await t.server.pruneChangeLog({ olderThanMs: 0 });
      expect(changes).toBeGreaterThanOrEqual(7);
      // The client's own write while away reaches the server through the new snapshot's handshake.
      await away.db.insert(items).values({ id: keys[5]!, title: 'written while away' });

      const snapshots = () =>
        away.tap.recent.filter((line) => line.startsWith('< {"type":"snapshot"')).length;
      const snapshotsBefore = snapshots();
      await away.sync.start();
      await t.server.db.insert(items).values({ id: keys[6]!, title: 'after the prune' });
      await settle(clients);
      expect(snapshots()).toBeGreaterThan(snapshotsBefore);
      const rows = await expectConverged(t.server.db, clients);
      expect(rows.items!.map((r) => r.title).sort()).toEqual(
        ['added', 'after the prune', 'changed', 'first', 'first', 'written while away'].sort(),
      );
      expect(away.errors).toEqual([]);
      expect(online.errors).toEqual([]);
    });
  });
}
