/**
 * The sync server every measurement of `npm run bench:sync` talks to: on the real PostgreSQL
 * server when DATABASE_URL is set (in a fresh schema, dropped at the end), else on an in-memory
 * PGlite. The tables are created and the initial-sync rows seeded before the server starts (as
 * an app that adopts sync on existing data), so seeding is never timed and never fills the
 * change log.
 */
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { type Database, type Driver, openDatabase } from '../../src/index.js';
import { createSyncServer, type LogEntry, type SyncServer } from '../../src/sync/server/index.js';
import { type BenchSchema, benchSchema, COUNTER_ROWS, PLAIN_TABLES } from './bench-schema.js';

/**
 * SQL sent past the sync server, as another program writing to the database would: its own
 * pg connection on PostgreSQL; on PGlite (one session, so a second handle would run inside the
 * server's transactions) the server's own Database, `server.db`.
 *
 * @example
 *   const writer = await bench.openWriter();
 *   await writer.transaction(async (query) => { await query('UPDATE counters SET value = $1 WHERE id = 1', [7]); });
 */
export interface SqlWriter {
  query(text: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  transaction(work: (query: SqlWriter['query']) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/**
 * A running bench server: the sync server, its URL, how to write and LISTEN past it, the
 * warnings and errors it logged, and `close()`, which also drops what the run created.
 *
 * @example
 *   const bench = await startBenchServer({ seed: { items: 100_000, itemsBig: 0 } });
 *   try { ... } finally { await bench.close(); }
 */
export interface BenchServer {
  readonly kind: 'postgres' | 'pglite';
  /** 'PostgreSQL 15.8 (node-postgres)' or 'PGlite 0.5.x (in memory)'. */
  readonly label: string;
  readonly server: SyncServer<BenchSchema>;
  readonly url: string;
  /** Warnings and errors the server logged (its log level is 'warn'). */
  readonly problems: readonly LogEntry[];
  openWriter(): Promise<SqlWriter>;
  /** LISTENs on `channel` on a connection of its own; returns how to stop. */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * How many rows `items` and `items_big` get before the server starts (0 for none).
 *
 * @example
 *   const seed: SeedSizes = { items: 100_000, itemsBig: 1_000_000 };
 */
export interface SeedSizes {
  readonly items: number;
  readonly itemsBig: number;
}

const SEED_CHUNK = 100_000;

/** Deterministic rows, generated in the database: uuids from md5, a spread of owners and dates. */
async function seedItems(
  db: Database<BenchSchema>,
  table: string,
  rows: number,
  progress: (line: string) => void,
) {
  for (let from = 1; from <= rows; from += SEED_CHUNK) {
    const to = Math.min(rows, from + SEED_CHUNK - 1);
    await db.run({
      sql: `INSERT INTO ${table} (id, owner_id, title, done, position, updated_at)
            SELECT md5('${table}' || i)::uuid, 'user-' || (i % 100), 'Item number ' || i || ' of the bench',
                   i % 3 = 0, i, timestamptz '2024-01-01 00:00:00Z' + i * interval '1 second'
              FROM generate_series($1::int, $2::int) AS i`,
      params: [from, to],
      arrayMode: false,
      needsBigInt: false,
    });
    if (rows > SEED_CHUNK)
      progress(`seeded ${to.toLocaleString('en-US')} of ${rows.toLocaleString('en-US')} ${table} rows`);
  }
}

async function prepare(driver: Driver, seed: SeedSizes, progress: (line: string) => void): Promise<void> {
  const db = await openDatabase(benchSchema, driver);
  try {
    const run = (sql: string) => db.run({ sql, params: [], arrayMode: false, needsBigInt: false });
    for (const [synced, plain] of Object.entries(PLAIN_TABLES)) {
      await run(`CREATE TABLE ${plain} (LIKE ${synced} INCLUDING ALL)`);
    }
    await run(
      `INSERT INTO counters (id, value) SELECT i, 0 FROM generate_series(0, ${COUNTER_ROWS - 1}) AS i`,
    );
    await seedItems(db, 'items', seed.items, progress);
    await seedItems(db, 'items_big', seed.itemsBig, progress);
    await run('ANALYZE');
  } finally {
    await db.close();
  }
}

function pgWriter(client: pg.Client): SqlWriter {
  const query = async (text: string, params: readonly unknown[] = []) =>
    (await client.query(text, params as unknown[])).rows as Record<string, unknown>[];
  return {
    query,
    async transaction(work) {
      await client.query('BEGIN');
      try {
        await work(query);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    },
    close: () => client.end(),
  };
}

function dbWriter(db: Database<BenchSchema>): SqlWriter {
  const on =
    (scope: Pick<Database, 'run'>) =>
    async (text: string, params: readonly unknown[] = []) =>
      (await scope.run({ sql: text, params, arrayMode: false, needsBigInt: false })).rows as Record<
        string,
        unknown
      >[];
  return {
    query: on(db),
    transaction: (work) => db.transaction((tx) => work(on(tx))),
    close: async () => {},
  };
}

/** Takes the upgrade-free path: the user is whatever the token says, so no JWT work is timed. */
const auth = { authenticate: ({ token }: { token: string | undefined }) => ({ userId: token ?? 'bench' }) };

async function serve(driver: Driver, problems: LogEntry[], report: (entry: LogEntry) => void) {
  const server = await createSyncServer({
    schema: benchSchema,
    database: driver,
    auth,
    // The socket-client measurements sign 1,000 sockets in as one user.
    limits: { maxConnectionsPerUser: 100_000 },
    log: {
      level: 'warn',
      sink: (entry) => {
        if (entry.event === 'rules.missing') return; // the bench syncs without rules on purpose
        problems.push(entry);
        report(entry);
      },
    },
  });
  try {
    await server.listen({ port: 0, host: '127.0.0.1' });
  } catch (error) {
    await server.close();
    throw error;
  }
  return server;
}

function pgliteVersion(): string {
  return (PGlite as unknown as { version?: string }).version ?? '';
}

/**
 * Creates the bench tables, seeds them, and starts a sync server on 127.0.0.1 (a free port): on
 * PostgreSQL at `databaseUrl` in a fresh schema, or on a new in-memory PGlite without one.
 * Server warnings and errors are collected in `problems` and passed to `report` as they come.
 *
 * @example
 *   const bench = await startBenchServer({ databaseUrl: process.env.DATABASE_URL, seed, progress: console.log });
 */
export async function startBenchServer(options: {
  readonly databaseUrl: string | undefined;
  readonly seed: SeedSizes;
  readonly progress: (line: string) => void;
}): Promise<BenchServer> {
  const problems: LogEntry[] = [];
  const report = (entry: LogEntry) =>
    options.progress(`server ${entry.level}: ${entry.event}: ${entry.message}`);
  const { databaseUrl } = options;
  if (databaseUrl) return startOnPostgres(databaseUrl, options.seed, options.progress, problems, report);

  const instance = new PGlite();
  await instance.waitReady;
  let server: SyncServer<BenchSchema>;
  try {
    await prepare(pglite({ instance }), options.seed, options.progress);
    server = await serve(pglite({ instance }), problems, report);
  } catch (error) {
    await instance.close();
    throw error;
  }
  return {
    kind: 'pglite',
    label: `PGlite ${pgliteVersion()} (in memory, in this process)`.replace('  ', ' '),
    server,
    url: server.url,
    problems,
    openWriter: async () => dbWriter(server.db),
    listen: async (channel, onMessage) => {
      const stop = await instance.listen(channel, onMessage);
      return async () => stop();
    },
    async close() {
      await server.close({ timeoutMs: 5000 });
      await instance.close();
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Drops the schemas of earlier runs on this machine whose process is gone (killed before it could
 * clean up: tsx ends a child that does not answer Ctrl-C within 30 ms). Runs still going keep theirs.
 */
async function dropStaleSchemas(client: pg.Client, progress: (line: string) => void): Promise<void> {
  const { rows } = await client.query<{ name: string }>(
    "SELECT nspname AS name FROM pg_namespace WHERE nspname ~ '^bench_sync_[0-9]+_[0-9a-z]+$'",
  );
  for (const { name } of rows) {
    if (alive(Number(name.split('_')[2]))) continue;
    await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
    progress(`dropped ${name}, left behind by an interrupted run`);
  }
}

async function startOnPostgres(
  databaseUrl: string,
  seed: SeedSizes,
  progress: (line: string) => void,
  problems: LogEntry[],
  report: (entry: LogEntry) => void,
): Promise<BenchServer> {
  const namespace = `bench_sync_${process.pid}_${Date.now().toString(36)}`;
  const connect = async () => {
    const client = new pg.Client({ connectionString: databaseUrl, options: `-c search_path="${namespace}"` });
    client.on('error', () => {});
    await client.connect();
    return client;
  };
  const drop = async () => {
    const admin = new pg.Client({ connectionString: databaseUrl });
    admin.on('error', () => {});
    try {
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${namespace}" CASCADE`);
    } catch (error) {
      console.error(
        `bench: could not drop schema ${namespace}: ${(error as Error).message}; drop it by hand`,
      );
    } finally {
      await admin.end().catch(() => {});
    }
  };
  let version: string;
  try {
    const probe = await connect();
    version = String((await probe.query('SHOW server_version')).rows[0].server_version);
    await dropStaleSchemas(probe, progress).catch((error) =>
      progress(`could not drop the schemas of interrupted runs: ${(error as Error).message}`),
    );
    await probe.end();
  } catch (error) {
    const shown = databaseUrl.replace(/\/\/[^@/]*@/, '//…@');
    throw new Error(
      `bench: no PostgreSQL server answers at DATABASE_URL (${shown}): ${(error as Error).message}; start it ` +
        '(pg_ctlcluster --skip-systemctl-redirect <version> main start), fix DATABASE_URL, or unset it to run on PGlite',
    );
  }
  let server: SyncServer<BenchSchema>;
  try {
    await prepare(postgres({ connectionString: databaseUrl, schema: namespace }), seed, progress);
    server = await serve(postgres({ connectionString: databaseUrl, schema: namespace }), problems, report);
  } catch (error) {
    await drop();
    throw error;
  }
  return {
    kind: 'postgres',
    label: `PostgreSQL ${version} (node-postgres), schema ${namespace}`,
    server,
    url: server.url,
    problems,
    openWriter: async () => pgWriter(await connect()),
    listen: async (channel, onMessage) => {
      const client = await connect();
      client.on('notification', (message) => {
        if (message.channel === channel) onMessage(message.payload ?? '');
      });
      await client.query(`LISTEN ${channel}`);
      return () => client.end();
    },
    async close() {
      try {
        await server.close({ timeoutMs: 5000 });
      } finally {
        await drop();
      }
    },
  };
}
