/**
 * `npm run bench:servers`: what running several sync servers behind a load balancer costs, in one
 * run: the same clients and writes against one `syncline serve` process behind HAProxy, then
 * against three (test/support/balanced-servers.ts, as docs/operations.md deploys them), each on a
 * fresh schema of the PostgreSQL server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
 * The clients are in-memory better-sqlite3 sync clients in this process, spread over the servers
 * by the balancer; the writes are a backend's, straight to PostgreSQL.
 *
 *   write → client  a one-row UPDATE, timed from sending it until every client's live query shows
 *                   it; sequential (BENCH_SERVERS_WRITES, default 100, after 10 unmeasured).
 *   change stream   BENCH_SERVERS_CHANGES rows (default 5,000) inserted in transactions of 50 as
 *                   fast as one connection can, timed until every client has caught up with them.
 *
 * Printed with the ratio of three servers to one. Clients: BENCH_SERVERS_CLIENTS (default 30).
 * Needs HAProxy (`apt-get install haproxy`). About 20 s.
 */
import { performance } from 'node:perf_hooks';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { eq, openDatabase } from '../../src/index.js';
import { type SyncClient, syncClient } from '../../src/sync/client/index.js';
import { BalancedServers, notes, notesSchema } from '../../test/support/balanced-servers.js';
import { requirements } from '../../test/support/requirements.js';
import { within } from '../support/bounded-wait.js';
import { envCount } from '../support/env-count.js';
import { quantile } from '../support/measure.js';
import { formatMs, formatOutcomes, formatRate, type Outcome } from './outcome.js';

const COUNTER = '00000000-0000-4000-8000-000000000001';
const WARMUP_WRITES = 10;
const STREAM_TRANSACTION_ROWS = 50;

/** What one deployment measured. */
interface Measured {
  readonly perClient: number[];
  readonly lastClient: number[];
  readonly streamMs: number;
  /** Clients per server, as the balancer spread them. */
  readonly spread: number[];
}

interface BenchClient {
  readonly sync: SyncClient;
  readonly close: () => Promise<void>;
  /** Resolves with the time the client's live query showed the counter at `value`. */
  seen(value: number): Promise<number>;
}

async function openClient(deployment: BalancedServers, i: number): Promise<BenchClient> {
  const db = await openDatabase(notesSchema, sqlite());
  const sync = syncClient(db, {
    url: deployment.url,
    token: () => deployment.token(`user-${i}`),
    backoff: { initialMs: 20, maxMs: 250 },
  });
  sync.on('error', (error) => console.error(`client ${i}: ${error.message}`));
  await sync.start();
  const waiting = new Map<number, (at: number) => void>();
  const stop = db
    .select({ n: notes.n })
    .from(notes)
    .where(eq(notes.id, COUNTER))
    .watch()
    .subscribe(([row]) => {
      const at = performance.now();
      if (row) waiting.get(row.n)?.(at);
    });
  return {
    sync,
    seen: (value) => new Promise((resolve) => waiting.set(value, resolve)),
    close: async () => {
      stop();
      await sync.stop();
      await db.close();
    },
  };
}

async function measure(
  servers: number,
  clientCount: number,
  writes: number,
  changes: number,
): Promise<Measured> {
  const deployment = await BalancedServers.start(servers, 'bench_servers');
  const backend = await deployment.connect();
  const clients: BenchClient[] = [];
  try {
    await backend.query(`INSERT INTO notes (id, owner, n, body) VALUES ($1, 'backend', 0, 'counter')`, [
      COUNTER,
    ]);
    for (let i = 0; i < clientCount; i++) clients.push(await openClient(deployment, i));
    await within(Promise.all(clients.map((c) => c.sync.caughtUp())), 60_000, 'the clients to sync');
    const spread = (await deployment.balancer.servers()).map((s) => s.connections);

    const perClient: number[] = [];
    const lastClient: number[] = [];
    for (let k = 1; k <= WARMUP_WRITES + writes; k++) {
      const seen = Promise.all(clients.map((c) => c.seen(k)));
      const started = performance.now();
      await backend.query('UPDATE notes SET n = $1 WHERE id = $2', [k, COUNTER]);
      const at = await within(seen, 30_000, `write ${k} to reach every client`);
      if (k <= WARMUP_WRITES) continue;
      const each = at.map((t) => t - started);
      perClient.push(...each);
      lastClient.push(Math.max(...each));
    }

    const started = performance.now();
    for (let done = 0; done < changes; done += STREAM_TRANSACTION_ROWS) {
      const rows = Math.min(STREAM_TRANSACTION_ROWS, changes - done);
      await backend.query(
        `INSERT INTO notes (id, owner, n, body)
           SELECT gen_random_uuid(), 'backend', g, 'stream ' || g FROM generate_series(1, $1::int) g`,
        [rows],
      );
    }
    await within(
      Promise.all(clients.map((c) => c.sync.caughtUp())),
      120_000,
      'the stream to reach every client',
    );
    const streamMs = performance.now() - started;
    return { perClient, lastClient, streamMs, spread };
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await backend.end();
    await deployment.close();
  }
}

async function main(): Promise<void> {
  process.env.DATABASE_URL ||= 'postgres://postgres@127.0.0.1:5432/test';
  if (!requirements.haproxy.present) {
    console.error(`bench:servers needs HAProxy: ${requirements.haproxy.how}`);
    process.exitCode = 1;
    return;
  }
  const clients = envCount('BENCH_SERVERS_CLIENTS', 30);
  const writes = envCount('BENCH_SERVERS_WRITES', 100);
  const changes = envCount('BENCH_SERVERS_CHANGES', 5000);
  console.log(
    `bench:servers: ${clients} clients in this process, ${writes} writes, ${changes} streamed rows; 1 then 3 syncline serve processes behind HAProxy`,
  );
  const one = await measure(1, clients, writes, changes);
  console.log(`[1 server] clients per server ${one.spread.join('/')}`);
  const three = await measure(3, clients, writes, changes);
  console.log(`[3 servers] clients per server ${three.spread.join('/')}`);

  const p50 = (m: Measured) => quantile(m.perClient, 0.5);
  const p99 = (m: Measured) => quantile(m.perClient, 0.99);
  const last = (m: Measured) => quantile(m.lastClient, 0.5);
  const rate = (m: Measured) => (changes * 1000) / m.streamMs;
  const line = (
    measurement: string,
    a: number,
    b: number,
    show: (v: number) => string,
    target: string,
    met: boolean | undefined,
  ): Outcome => ({
    measurement,
    result: `${show(b)} with 3 servers`,
    baseline: `${show(a)} with 1 server`,
    ratio: `${(b / a).toFixed(2)}x`,
    target,
    met,
  });
  const outcomes: Outcome[] = [
    line('write → client p50', p50(one), p50(three), formatMs, '<= 2x', p50(three) <= 2 * p50(one)),
    line('write → client p99', p99(one), p99(three), formatMs, '—', undefined),
    line('write → last client p50', last(one), last(three), formatMs, '<= 2x', last(three) <= 2 * last(one)),
    line(
      `change stream, ${changes} rows to ${clients} clients`,
      rate(one),
      rate(three),
      (v) => formatRate(v, 1000),
      '>= 0.5x',
      rate(three) >= 0.5 * rate(one),
    ),
  ];
  console.log(`\n${formatOutcomes(outcomes)}`);
  if (outcomes.some((o) => o.met === false)) process.exitCode = 1;
}

await main();
