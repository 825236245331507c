import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import type { Driver } from '../../src/index.js';
import { createSyncServer, type SyncServer } from '../../src/sync/server/index.js';
import {
  closeClients,
  driverPairs,
  type E2eClient,
  e2eSchema,
  expectConverged,
  fixedKeys,
  items,
  openClients,
  rawSqlite,
  settle,
  signToken,
  within,
} from '../support/sync-fixture.js';
import { TEST_JWT_SECRET } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * Live clients ride through a server restart in the middle of a stream of backend writes: the
 * server is closed while rows stream to the clients, a new server starts on the same database and
 * port, and the clients reconnect by themselves and converge. Nothing is lost or applied twice: on
 * each client, triggers on `items` count the inserts and updates of every row, and each streamed
 * row was inserted exactly once and never written again.
 */

type Server = SyncServer<typeof e2eSchema>;

const SEED_ROWS = 100;
const STREAM_ROWS = 2000;
const ROWS_PER_TRANSACTION = 10;
const keys = fixedKeys(SEED_ROWS + STREAM_ROWS + 10);
const seedKeys = keys.slice(0, SEED_ROWS);
const streamKeys = keys.slice(SEED_ROWS, SEED_ROWS + STREAM_ROWS);
const offlineKeys = keys.slice(SEED_ROWS + STREAM_ROWS);

/**
 * One database the test restarts servers on: a PGlite data directory in a temp folder, or a schema
 * of the real PostgreSQL server. `write` inserts rows straight into `items`, past the sync server:
 * on PostgreSQL over a connection of its own (it goes on while no server runs); on PGlite, which
 * is one session, through the running server's database.
 */
interface Deployment {
  driver(): Driver;
  write(server: Server | undefined, ids: readonly string[]): Promise<void>;
  /** Whether `write` needs a running server. */
  readonly writesThroughServer: boolean;
  dispose(): Promise<void>;
}

function pgliteDeployment(): Deployment {
  const dataDir = mkdtempSync(join(tmpdir(), 'syncline-e2e-restart-'));
  return {
    driver: () => pglite({ dataDir }),
    writesThroughServer: true,
    async write(server, ids) {
      await server!.db.insert(items).values(ids.map((id) => ({ id, title: `streamed ${id.slice(-4)}` })));
    },
    async dispose() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function postgresDeployment(): Promise<Deployment> {
  const connectionString = process.env.DATABASE_URL!;
  const schemaName = `e2e_restart_${process.pid}_${Date.now().toString(36)}`;
  const writer = new pg.Client({ connectionString, options: `-c search_path="${schemaName}"` });
  await writer.connect();
  return {
    driver: () => postgres({ connectionString, schema: schemaName }),
    writesThroughServer: false,
    async write(_server, ids) {
      const values = ids.map((_, i) => `($${i * 2 + 1}, $${i * 2 + 2}, 0, false, '[]')`).join(', ');
      await writer.query(
        `INSERT INTO items (id, title, qty, done, tags) VALUES ${values}`,
        ids.flatMap((id) => [id, `streamed ${id.slice(-4)}`]),
      );
    },
    async dispose() {
      await writer.query(`DROP SCHEMA IF EXISTS "${schemaName}" CASCADE`);
      await writer.end();
    },
  };
}

/** Starts a sync server on the deployment's database, on `port` (retrying while it is still taken). */
async function startServer(deployment: Deployment, port = 0): Promise<Server> {
  const server = await createSyncServer({
    schema: e2eSchema,
    database: deployment.driver(),
    auth: { jwtSecret: TEST_JWT_SECRET },
    log: { level: 'silent' },
  });
  for (let attempt = 1; ; attempt++) {
    try {
      await server.listen({ port });
      return server;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 50) {
        await server.close();
        throw error;
      }
      await sleep(20);
    }
  }
}

/** Counts, on a client, every insert and update of each `items` row from now on. */
async function countWrites(client: E2eClient): Promise<void> {
  for (const statement of [
    'CREATE TABLE applied (id TEXT PRIMARY KEY, inserts INTEGER NOT NULL DEFAULT 0, updates INTEGER NOT NULL DEFAULT 0)',
    `CREATE TRIGGER applied_insert AFTER INSERT ON items BEGIN
       INSERT INTO applied (id, inserts) VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET inserts = inserts + 1;
     END`,
    `CREATE TRIGGER applied_update AFTER UPDATE ON items BEGIN
       INSERT INTO applied (id, updates) VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET updates = updates + 1;
     END`,
  ]) {
    await rawSqlite(client.db, statement);
  }
}

let clients: E2eClient[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
  while (cleanups.length > 0) await cleanups.pop()!();
});

for (const [driver, clientDriver] of driverPairs) {
  describe(`e2e server restart [${driver}, ${clientDriver} clients]`, () => {
    it('clients reconnect to a restarted server mid-stream; no change is lost or applied twice', async () => {
      const deployment = driver === 'pglite' ? pgliteDeployment() : await postgresDeployment();
      cleanups.push(() => deployment.dispose());
      let server: Server | undefined = await startServer(deployment);
      cleanups.push(async () => server?.close({ timeoutMs: 2000 }));
      const port = server.port;
      await deployment.write(server, seedKeys);

      clients = await openClients({ port, token: signToken }, 2, { clientDriver });
      const statuses = clients.map(() => [] as string[]);
      for (const [i, c] of clients.entries()) c.sync.on('status', (s) => statuses[i].push(s));
      await Promise.all(clients.map((c) => c.sync.start()));
      await settle(clients);
      for (const c of clients) await countWrites(c);

      // The backend streams rows in small transactions; on PGlite it waits while no server runs.
      let written = 0;
      let paused: Promise<void> | undefined;
      const stream = (async () => {
        for (let i = 0; i < STREAM_ROWS; i += ROWS_PER_TRANSACTION) {
          if (paused) await paused;
          const ids = streamKeys.slice(i, i + ROWS_PER_TRANSACTION);
          await deployment.write(server, ids);
          written += ROWS_PER_TRANSACTION;
          await sleep(1);
        }
      })();
      stream.catch(() => {});

      await waitFor(() => written >= STREAM_ROWS / 2, 20_000, 'the backend to write half of the stream');
      let resume!: () => void;
      if (deployment.writesThroughServer) paused = new Promise<void>((resolve) => (resume = resolve));
      const old = server;
      server = undefined;
      await old.close({ timeoutMs: 2000 });
      const seenAtRestart = await Promise.all(
        clients.map(async (c) => (await c.db.select().from(items)).length),
      );
      // Written meanwhile by a client, pushed once the new server is up.
      await clients[0].db
        .insert(items)
        .values(offlineKeys.map((id) => ({ id, title: 'while the server was down' })));
      server = await startServer(deployment, port);
      paused = undefined;
      resume?.();

      await within(stream, 30_000, 'the backend to write the whole stream');
      await settle(clients, 30_000);
      await expectConverged(server.db, clients);
      expect((await server.db.select().from(items)).length).toBe(
        SEED_ROWS + STREAM_ROWS + offlineKeys.length,
      );
      for (const [i, c] of clients.entries()) {
        expect(seenAtRestart[i], `client ${c.name} had the whole stream before the restart`).toBeLessThan(
          SEED_ROWS + STREAM_ROWS,
        );
        expect(statuses[i].slice(-2), `client ${c.name} reconnected`).toEqual(['connecting', 'online']);
        expect(statuses[i].filter((s) => s === 'online').length).toBeGreaterThanOrEqual(2);
        const counts = await rawSqlite(
          c.db,
          'SELECT id, inserts, updates FROM applied WHERE id >= ? AND id <= ? ORDER BY id',
          [streamKeys[0], streamKeys[streamKeys.length - 1]],
        );
        expect(counts.length, `client ${c.name} received every streamed row`).toBe(STREAM_ROWS);
        expect(
          counts.filter((r) => r.inserts !== 1 || r.updates !== 0),
          `client ${c.name}: streamed rows inserted more than once or written again`,
        ).toEqual([]);
        const seeds = await rawSqlite(c.db, 'SELECT id FROM applied WHERE id < ?', [streamKeys[0]]);
        expect(seeds, `client ${c.name}: the initial rows were written again (a new snapshot?)`).toEqual([]);
      }
    }, 60_000);

    // No client takes part: once per server driver.
    if (driver === 'postgres' && clientDriver === 'sync') {
      it('a server starting while a backend writes to its tables does not fail those writes', async () => {
        const deployment = await postgresDeployment();
        cleanups.push(() => deployment.dispose());
        await (await startServer(deployment)).close();
        let stop = false;
        let writes = 0;
        const failures: string[] = [];
        const writer = (async () => {
          for (let i = 0; !stop && i < 100_000; i++) {
            const ids = [randomUUID(), randomUUID()];
            await deployment.write(undefined, ids).then(
              () => writes++,
              (error: Error) => failures.push(error.message),
            );
          }
        })();
        const startFailures: string[] = [];
        for (let i = 0; i < 5; i++) {
          await startServer(deployment).then(
            (s) => s.close(),
            (error: Error) => startFailures.push(error.message),
          );
        }
        stop = true;
        await within(writer, 10_000, 'the writer to stop');
        expect(writes).toBeGreaterThan(0);
        // Re-creating the capture triggers on a start would lock the log, then the tables, while
        // writers hold a table and wait for the log: PostgreSQL would abort one side.
        expect({ writerFailures: failures, startFailures }).toEqual({
          writerFailures: [],
          startFailures: [],
        });
      }, 60_000);
    }
  });
}
