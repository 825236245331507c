/**
 * Capture overhead on the client: the same inserts, through syncline's query builder on one
 * in-memory better-sqlite3 database, into a synced table (the sync client started, so its capture
 * triggers write every row to the outbox and every commit is stamped) and into a local table with
 * the same columns (`localTable`, never captured). Two cases: one transaction of 10,000 rows (500
 * per statement) and 1,000 single-row transactions. Each call ends when every outbox row is
 * in a batch (the client stamps in one pass after the commits of a macrotask), so stamping is timed
 * with the writes that caused it; the local table's calls wait the same way. The client points
 * at a port where nothing listens: it captures and stamps as when offline, and no push or server
 * work shares the CPU. Between calls (untimed) both tables and the outbox are emptied, as an
 * online client's outbox empties when the server acknowledges it.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import BetterSqlite3 from 'better-sqlite3';
import WebSocket from 'ws';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  type AnyTable,
  boolean,
  type Database,
  integer,
  localTable,
  openDatabase,
  schema,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';
import { syncClient } from '../../src/sync/client/index.js';
import { within } from '../support/bounded-wait.js';
import { formatMicros, type Measurement, measureAll } from '../support/measure.js';
import { formatCount, formatMs, type Outcome } from './outcome.js';

const columns = () => ({
  id: uuid().primaryKey(),
  title: text().notNull(),
  done: boolean().notNull(),
  position: integer().notNull(),
  updatedAt: timestamp('updated_at').notNull(),
});
const capturedItems = table('captured_items', columns());
const localItems = localTable('local_items', columns());
const captureSchema = schema({ capturedItems, localItems }, { version: 1 });

const BULK_ROWS = 10_000;
const SINGLE_TRANSACTIONS = 1_000;
const PER_STATEMENT = 500;

type Row = typeof capturedItems.$inferInsert;

/** A URL where nothing listens: a port taken from the OS and given back at once. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `ws://127.0.0.1:${port}/sync`;
}

function query(db: Database, sql: string) {
  return db.run({ sql, params: [], arrayMode: false, needsBigInt: false });
}

async function outboxSize(db: Database): Promise<number> {
  const { rows } = await query(db, 'SELECT count(*) AS n FROM _syncline_outbox');
  return Number((rows[0] as { n: number }).n);
}

async function unstamped(db: Database): Promise<number> {
  const { rows } = await query(
    db,
    'SELECT count(*) AS n FROM _syncline_outbox WHERE seq > (SELECT coalesce(max(last_seq), 0) FROM _syncline_batches)',
  );
  return Number((rows[0] as { n: number }).n);
}

function operations(db: Database<typeof captureSchema>, rows: readonly Row[], target: AnyTable) {
  const into = target as typeof capturedItems;
  // Until the client's stamping pass (scheduled after the last commit) has stamped every row.
  const settle = async () => {
    for (let turn = 0; turn < 1_000; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      if ((await unstamped(db)) === 0) return;
    }
    throw new Error('bench: the outbox was not stamped within 1,000 turns');
  };
  const clear = async () => {
    await query(db, `DELETE FROM "${target.$name}"`);
    await query(db, 'DELETE FROM _syncline_outbox');
    await query(db, 'DELETE FROM _syncline_batches');
  };
  return {
    bulk: {
      beforeEach: clear,
      run: async () => {
        await db.transaction(async (tx) => {
          for (let i = 0; i < BULK_ROWS; i += PER_STATEMENT)
            await tx.insert(into).values(rows.slice(i, i + PER_STATEMENT));
        });
        await settle();
      },
    },
    single: {
      beforeEach: clear,
      run: async () => {
        for (let i = 0; i < SINGLE_TRANSACTIONS; i++) await db.insert(into).values(rows[i]!);
        await settle();
      },
    },
  };
}

/**
 * Times both cases on both tables and returns the summary lines: the synced table's time as a
 * ratio of the local table's. Target under 2x.
 *
 * @example
 *   outcomes.push(...(await measureCaptureOverhead({ samples: 7, progress: console.log })));
 */
export async function measureCaptureOverhead(options: {
  readonly samples: number;
  readonly progress: (line: string) => void;
}): Promise<Outcome[]> {
  const handle = new BetterSqlite3(':memory:');
  const db = await openDatabase(captureSchema, sqlite({ database: handle }));
  const sync = syncClient(db, {
    url: await deadUrl(),
    token: 'bench',
    WebSocket: WebSocket as never,
    // One refused attempt, then a long pause: nothing but capture and stamping runs.
    backoff: { initialMs: 600_000, maxMs: 600_000 },
  });
  sync.on('error', () => {});
  try {
    await within(sync.start(), 10_000, 'the capture client to start');
    const rows: Row[] = Array.from({ length: BULK_ROWS }, (_, i) => ({
      id: randomUUID(),
      title: `captured row ${i}`,
      done: i % 3 === 0,
      position: i,
      updatedAt: new Date(1_700_000_000_000 + i * 1000),
    }));
    const captured = operations(db, rows, capturedItems);
    const local = operations(db, rows, localItems);
    // Both tables must end up with every row, and only the synced one in the outbox.
    await captured.bulk.beforeEach();
    await captured.bulk.run();
    const outboxRows = await outboxSize(db);
    if (outboxRows !== BULK_ROWS)
      throw new Error(`bench: the outbox holds ${outboxRows} rows after inserting ${BULK_ROWS}`);
    await local.bulk.beforeEach();
    await local.bulk.run();
    const outboxAfterLocal = await outboxSize(db);
    if (outboxAfterLocal !== 0) throw new Error('bench: inserts into the local table reached the outbox');

    const cases = [
      { label: `${formatCount(BULK_ROWS)} rows, 1 transaction`, key: 'bulk' as const, rows: BULK_ROWS },
      {
        label: `${formatCount(SINGLE_TRANSACTIONS)} single-row transactions`,
        key: 'single' as const,
        rows: SINGLE_TRANSACTIONS,
      },
    ];
    const outcomes: Outcome[] = [];
    for (const c of cases) {
      const m: Record<'local' | 'captured', Measurement> = await measureAll(
        { local: local[c.key], captured: captured[c.key] },
        { samples: options.samples, warmupMs: 300 },
      );
      const ratio = m.captured.medianUs / m.local.medianUs;
      const perRow = (x: Measurement) => `${formatMicros(x.medianUs / c.rows)} µs/row`;
      options.progress(
        `${c.label}: synced table ${formatMs(m.captured.medianUs / 1000)} (${perRow(m.captured)}), ` +
          `local table ${formatMs(m.local.medianUs / 1000)} (${perRow(m.local)}): ${ratio.toFixed(2)}x`,
      );
      outcomes.push({
        measurement: `capture, ${c.label}`,
        result: `${formatMs(m.captured.medianUs / 1000)} (${perRow(m.captured)})`,
        baseline: `local table ${formatMs(m.local.medianUs / 1000)}`,
        ratio: `${ratio.toFixed(2)}x local`,
        target: '< 2x local',
        met: ratio < 2,
      });
    }
    return outcomes;
  } finally {
    await sync.stop();
    await db.close();
    handle.close();
  }
}
