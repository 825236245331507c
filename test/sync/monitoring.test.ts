import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { type Database, openDatabase, sql } from '../../src/index.js';
import { type SyncClient, syncClient } from '../../src/sync/client/index.js';
import type { LogEntry } from '../../src/sync/server/index.js';
import { appSchema, lists } from '../support/fixtures.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

// What an operator sees of a sync server: /healthz, /readyz and /metrics on its HTTP port.
const ADMIN = 'an-admin-token-of-some-length-0123456789';
const LIST = '0f8fad5b-d9cb-469f-a165-70867728950e';
const OTHERS = '1f8fad5b-d9cb-469f-a165-70867728950e';

const opened: { db: Database<typeof appSchema>; sync: SyncClient }[] = [];
afterEach(async () => {
  for (const { db, sync } of opened.splice(0)) {
    await sync.stop();
    await db.close();
  }
});

function http(t: TestServer<typeof appSchema>, path: string, token?: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${t.server.port}${path}`, {
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
}

/** The value of one series in Prometheus text (`name{labels} value`), or undefined. */
function series(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

for (const driver of serverDrivers) {
  describe(`monitoring [${driver}]`, () => {
    it('answers /healthz and /readyz, and /metrics only with the admin token', async () => {
      const t = await startTestServer(appSchema, {
        driver,
        monitoring: { metrics: true, adminToken: ADMIN },
        rules: {
          lists: { read: () => true, write: (user, row) => row.ownerId === user.userId },
          todos: { read: () => true, write: () => true },
        },
      });
      expect((await http(t, '/healthz')).status).toBe(200);
      const ready = await http(t, '/readyz');
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({
        ready: true,
        checks: { database: 'ok', capture: 'ok', changeLog: 'ok' },
      });

      expect((await http(t, '/metrics')).status).toBe(401);
      expect((await http(t, '/metrics', 'wrong')).status).toBe(401);
      expect((await http(t, '/metrics', `${ADMIN}x`)).status).toBe(401);

      // A client connects, pushes one batch the rules take and one they refuse.
      const db = await openDatabase(appSchema, sqlite());
      const sync = syncClient(db, { url: t.url, token: await t.token('u1'), shapes: [{ table: lists }] });
      opened.push({ db, sync });
      await sync.start();
      await db.insert(lists).values({ id: LIST, name: 'secret groceries', ownerId: 'u1' });
      await sync.flush();
      await db.insert(lists).values({ id: OTHERS, name: 'not hers', ownerId: 'u2' });
      await sync.flush();
      await t.server.db.execute(sql`UPDATE lists SET name = 'renamed' WHERE id = ${LIST}`);
      await sync.caughtUp();

      const response = await http(t, '/metrics', ADMIN);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/text\/plain/);
      const text = await response.text();
      expect(series(text, 'syncline_connections{state="live"}')).toBe(1);
      expect(series(text, 'syncline_handshakes_total{outcome="welcomed"}')).toBe(1);
      expect(series(text, 'syncline_pushes_total')).toBe(2);
      expect(series(text, 'syncline_mutations_total{status="applied"}')).toBe(1);
      expect(series(text, 'syncline_mutations_total{status="rejected"}')).toBe(1);
      expect(series(text, 'syncline_rejections_total{reason="rule"}')).toBe(1);
      expect(series(text, 'syncline_changes_read_total{table="lists"}')).toBeGreaterThanOrEqual(2);
      expect(series(text, 'syncline_changes_sent_total')).toBeGreaterThanOrEqual(2);
      expect(series(text, 'syncline_bytes_out_total')).toBeGreaterThan(0);
      expect(series(text, 'syncline_snapshot_seconds_count')).toBe(1);
      expect(series(text, 'syncline_change_log_lag_seconds')).toBe(0);
      expect(series(text, 'syncline_change_log_ticks_behind')).toBe(0);
      // Counts and codes only: no row data, no user.
      expect(text).not.toMatch(/groceries|renamed|not hers|u1|u2/);
    });

    it("names the connection and its client in every line it logs, so one client's story can be followed", async () => {
      const entries: LogEntry[] = [];
      const t = await startTestServer(appSchema, {
        driver,
        log: { level: 'debug', sink: (entry) => entries.push(entry) },
      });
      const db = await openDatabase(appSchema, sqlite());
      const sync = syncClient(db, { url: t.url, token: await t.token('u1'), shapes: [{ table: lists }] });
      opened.push({ db, sync });
      await sync.start();
      await db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u1' });
      await sync.flush();
      await sync.stop();
      await waitFor(
        () => entries.some((e) => e.event === 'connection.closed'),
        5000,
        'the close to be logged',
      );
      const mine = entries.filter((e) => /^(connection|push|snapshot|shape|fetch)\./.test(e.event));
      expect(mine.map((e) => e.event)).toEqual(
        expect.arrayContaining([
          'connection.open',
          'snapshot.sent',
          'connection.live',
          'push.applied',
          'connection.closed',
        ]),
      );
      const ids = new Set(mine.map((e) => e.connectionId));
      expect([...ids]).toEqual([expect.stringMatching(/^c\d+$/)]);
      for (const entry of mine.filter((e) => e.event !== 'connection.open')) {
        expect(entry.clientId, entry.event).toBe(sync.clientId);
      }
    });

    it('says not ready within its timeout when the database does not answer, and ready again after', async () => {
      const t = await startTestServer(appSchema, { driver, monitoring: { readyTimeoutMs: 300 } });
      expect((await http(t, '/metrics')).status).toBe(404);
      // A transaction holds the change log's table exclusively: the capture check waits on it.
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const locking = t.server.db.transaction(async (tx) => {
        await tx.execute(sql`LOCK TABLE _syncline_changes IN ACCESS EXCLUSIVE MODE`);
        await held;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const busy = await http(t, '/readyz');
      expect(busy.status).toBe(503);
      // The check that hung is named: on PostgreSQL the database answers and the log's table does
      // not; PGlite's one session is held by the transaction, so nothing answers there.
      expect((await busy.json()).checks).toEqual(
        driver === 'postgres'
          ? { database: 'ok', capture: 'no answer within 300 ms' }
          : { database: 'no answer within 300 ms' },
      );
      expect((await http(t, '/healthz')).status).toBe(200);
      release();
      await locking;
      await waitFor(async () => (await http(t, '/readyz')).status === 200, 5000, 'ready again');
    });
  });
}
