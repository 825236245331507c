/**
 * A bench client: an in-memory better-sqlite3 database with the bench schema and a sync client
 * on it, talking to the server over a real WebSocket, with its errors and reconnects counted so a
 * measurement can tell a clean run from one that only converged after trouble.
 */
import BetterSqlite3 from 'better-sqlite3';
import WebSocket from 'ws';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { type Database, openDatabase } from '../../src/index.js';
import { type SyncClient, type SyncShape, syncClient } from '../../src/sync/client/index.js';
import { within } from '../support/bounded-wait.js';
import { type BenchSchema, benchSchema } from './bench-schema.js';

/**
 * One bench client. `handle` is its better-sqlite3 connection (for raw counts and the raw
 * baselines); `errors` holds what the sync client reported; `drops` counts how often it went
 * from online back to connecting.
 *
 * @example
 *   const client = await openBenchClient(bench.url, [{ table: feed }]);
 *   await client.start();
 */
export interface BenchClient {
  readonly db: Database<BenchSchema>;
  readonly handle: BetterSqlite3.Database;
  readonly sync: SyncClient;
  readonly errors: Error[];
  readonly drops: number;
  /** `sync.start()`, bounded; fails when the first connection is not welcomed. */
  start(timeoutMs?: number): Promise<void>;
  /** `sync.caughtUp()`, bounded. */
  caughtUp(timeoutMs: number, what: string): Promise<void>;
  /** The number of rows of `table` in this client's database. */
  count(table: string): number;
  close(): Promise<void>;
}

/**
 * Opens a fresh in-memory client database for `shapes` (not started yet).
 *
 * @example
 *   const client = await openBenchClient(url, [{ table: counters }], 'user-1');
 */
export async function openBenchClient(
  url: string,
  shapes: readonly SyncShape[],
  token = 'bench',
): Promise<BenchClient> {
  const handle = new BetterSqlite3(':memory:');
  const db = await openDatabase(benchSchema, sqlite({ database: handle }));
  const sync = syncClient(db, {
    url,
    token,
    shapes,
    WebSocket: WebSocket as never,
    backoff: { initialMs: 20, maxMs: 500 },
  });
  const errors: Error[] = [];
  let drops = 0;
  sync.on('error', (error) => errors.push(error));
  let wasOnline = false;
  sync.on('status', (status) => {
    if (status === 'online') wasOnline = true;
    else if (wasOnline && status === 'connecting') drops++;
  });
  const counts = new Map<string, BetterSqlite3.Statement>();
  return {
    db,
    handle,
    sync,
    errors,
    get drops() {
      return drops;
    },
    async start(timeoutMs = 30_000) {
      await within(sync.start(), timeoutMs, 'a client to connect');
      if (sync.status !== 'online') {
        const why = errors.at(-1)?.message ?? 'no error reported';
        throw new Error(`bench: a client could not connect to ${url}: ${why}`);
      }
    },
    caughtUp: (timeoutMs, what) => within(sync.caughtUp(), timeoutMs, what),
    count(table) {
      let statement = counts.get(table);
      if (!statement) counts.set(table, (statement = handle.prepare(`SELECT count(*) FROM "${table}"`)));
      return Number(statement.pluck().get());
    },
    async close() {
      await sync.stop();
      await db.close();
      handle.close();
    },
  };
}

/**
 * Opens and starts `n` clients, `parallel` at a time (each start runs a handshake and a snapshot on
 * the server), client `i` on `shapesOf(i)`; on failure the ones already open are closed.
 *
 * @example
 *   const fleet = await startFleet(bench.url, 100, () => [{ table: counters }, { table: feed }]);
 */
export async function startFleet(
  url: string,
  n: number,
  shapesOf: (i: number) => readonly SyncShape[],
  parallel = 10,
): Promise<BenchClient[]> {
  const clients: BenchClient[] = [];
  try {
    for (let i = 0; i < n; i += parallel) {
      const wave = await Promise.all(
        Array.from({ length: Math.min(parallel, n - i) }, (_, j) => openBenchClient(url, shapesOf(i + j))),
      );
      clients.push(...wave);
      await Promise.all(wave.map((c) => c.start()));
    }
    return clients;
  } catch (error) {
    await closeAll(clients);
    throw error;
  }
}

/**
 * Closes clients, all of them even when some fail to close.
 *
 * @example
 *   await closeAll(fleet);
 */
export async function closeAll(clients: readonly BenchClient[]): Promise<void> {
  await Promise.allSettled(clients.map((c) => c.close()));
}

/**
 * A short account of the trouble clients had (errors, dropped connections), or '' when none.
 *
 * @example
 *   const trouble = troubleOf(fleet); // 'clients reported 2 errors (first: ...); 1 dropped connection'
 */
export function troubleOf(clients: readonly BenchClient[]): string {
  const errors = clients.flatMap((c) => c.errors);
  const drops = clients.reduce((sum, c) => sum + c.drops, 0);
  const parts: string[] = [];
  if (errors.length > 0) parts.push(`${errors.length} client errors (first: ${errors[0]!.message})`);
  if (drops > 0) parts.push(`${drops} dropped connections`);
  return parts.join('; ');
}
