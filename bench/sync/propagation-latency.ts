/**
 * Propagation latency: a single-row UPDATE committed in the database past the sync server (its own
 * pg connection; `server.db` on PGlite), timed from sending the write until a live query
 * (`db.select().from(counters).watch()`) re-emits with the new value, on every connected client.
 * Writes are sequential: the next starts once every client has seen the previous one. The clients
 * run in a process of their own (sync-clients.ts), as they would on devices of their own, or, for
 * comparison, in this process, sharing one thread with the server. Baselines in the same run:
 * PostgreSQL NOTIFY→LISTEN delivery on the same database (sent by the same writer, timed the same
 * way) and a bare WebSocket round trip on loopback.
 */
import { performance } from 'node:perf_hooks';
import WebSocket, { WebSocketServer } from 'ws';
import { within } from '../support/bounded-wait.js';
import { quantile } from '../support/measure.js';
import type { BenchClient } from './bench-client.js';
import { COUNTER_ROWS } from './bench-schema.js';
import type { BenchServer } from './bench-server.js';
import { BenchChild } from './child-bench.js';
import { absoluteNow, type LiveWatchers, SeenRecorder } from './live-watchers.js';
import { formatCount, formatMs, type Outcome } from './outcome.js';

/**
 * ms from sending each write until it was seen: per client and write, and until the last client.
 *
 * @example
 *   const p50 = quantile(times.perClient, 0.5);
 */
export interface PropagationTimes {
  readonly clients: number;
  readonly perClient: number[];
  readonly lastClient: number[];
  /** How long the write itself took to return (its commit included). */
  readonly writeMs: number[];
}

/**
 * The baselines' round trips, in ms: NOTIFY→LISTEN deliveries and WebSocket echoes.
 *
 * @example
 *   const notifyP50 = quantile(baselines.notify, 0.5);
 */
export interface LatencyBaselines {
  readonly notify: number[];
  readonly ws: number[];
}

const WRITE_TIMEOUT_MS = 30_000;
/** Writes made and thrown away before timing, so every path is warm. */
const WARMUP_WRITES = 20;
let written = 0;

/**
 * Live watchers on clients in this process (sharing its one thread with the server).
 *
 * @example
 *   const watchers = await watchInProcess(fleet);
 */
export async function watchInProcess(clients: readonly BenchClient[]): Promise<LiveWatchers> {
  const recorder = new SeenRecorder();
  await recorder.watch(clients);
  return {
    clients: clients.length,
    seen: (value) => recorder.seen(value),
    close: async () => recorder.stop(),
  };
}

/**
 * Sync clients in a child process (sync-clients.ts) with live queries on `counters`.
 *
 * @example
 *   const clients = ClientProcess.start(bench.url);
 *   await clients.grow(100);
 */
export class ClientProcess implements LiveWatchers {
  clients = 0;
  private constructor(private readonly child: BenchChild) {}

  static start(url: string): ClientProcess {
    return new ClientProcess(BenchChild.fork('./sync-clients.ts', [url], 'sync client process'));
  }

  /** Starts `n` more clients; resolves once their live queries emitted a first result. */
  async grow(n: number, timeoutMs = 180_000): Promise<void> {
    this.clients = await this.child.ask(
      { grow: n },
      (m) => m.ready as number | undefined,
      timeoutMs,
      `${formatCount(n)} sync clients in their own process to start`,
    );
  }

  seen(value: number): Promise<number[]> {
    return this.child.ask(
      { await: value },
      (m) => (m.seen === value ? (m.at as number[]) : undefined),
      WRITE_TIMEOUT_MS,
      `value ${value} to reach every client`,
    );
  }

  close(): Promise<void> {
    return this.child.close();
  }
}

/**
 * ms from sending each write until it was seen: per client and write, and until the last client.
 *
 * @example
 *   const p50 = quantile(times.perClient, 0.5);
 */
export interface PropagationTimes {
  readonly clients: number;
  /** Where the clients ran: 'own process' or 'server process'. */
  readonly where: string;
  readonly perClient: number[];
  readonly lastClient: number[];
  /** How long the write itself took to return (its commit included). */
  readonly writeMs: number[];
}

/**
 * Times `writes` sequential updates from the moment each is sent until every client's live query
 * has re-emitted with it.
 *
 * @example
 *   const times = await measurePropagation(bench, watchers, 300, 'own process');
 */
export async function measurePropagation(
  bench: BenchServer,
  watchers: LiveWatchers,
  writes: number,
  where: string,
): Promise<PropagationTimes> {
  const writer = await bench.openWriter();
  try {
    const times: PropagationTimes = {
      clients: watchers.clients,
      where,
      perClient: [],
      lastClient: [],
      writeMs: [],
    };
    for (let k = 0; k < WARMUP_WRITES + writes; k++) {
      const value = ++written;
      const started = absoluteNow();
      const seen = watchers.seen(value);
      await writer.query('UPDATE counters SET value = $1 WHERE id = $2', [value, k % COUNTER_ROWS]);
      const writeMs = absoluteNow() - started;
      const at = await within(seen, WRITE_TIMEOUT_MS, `write ${k} to reach ${watchers.clients} clients`);
      if (k < WARMUP_WRITES) continue;
      const perClient = at.map((t) => t - started);
      times.perClient.push(...perClient);
      times.lastClient.push(Math.max(...perClient));
      times.writeMs.push(writeMs);
    }
    return times;
  } finally {
    await writer.close();
  }
}

/**
 * The baselines: `n` NOTIFY→LISTEN deliveries (a `pg_notify` sent by a writer like the one the
 * sync writes use, heard on another connection) and `n` bare WebSocket round trips on loopback.
 *
 * @example
 *   const { notify, ws } = await measureLatencyBaselines(bench, 300);
 */
export async function measureLatencyBaselines(bench: BenchServer, n: number): Promise<LatencyBaselines> {
  const notify: number[] = [];
  const writer = await bench.openWriter();
  let heard: ((payload: string) => void) | undefined;
  const unlisten = await bench.listen('bench_latency', (payload) => heard?.(payload));
  try {
    for (let k = 0; k < WARMUP_WRITES + n; k++) {
      const payload = String(k);
      const arrived = new Promise<void>((resolve) => {
        heard = (p) => {
          if (p === payload) resolve();
        };
      });
      const started = performance.now();
      await writer.query('SELECT pg_notify($1, $2)', ['bench_latency', payload]);
      await within(arrived, WRITE_TIMEOUT_MS, `notification ${k}`);
      if (k >= WARMUP_WRITES) notify.push(performance.now() - started);
    }
  } finally {
    await unlisten();
    await writer.close();
  }
  return { notify, ws: await wsRoundTrips(n) };
}

async function wsRoundTrips(n: number): Promise<number[]> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  server.on('connection', (socket) => socket.on('message', (data) => socket.send(data.toString())));
  const { port } = server.address() as { port: number };
  const socket = new WebSocket(`ws://127.0.0.1:${port}`);
  const times: number[] = [];
  try {
    await within(
      new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)),
      10_000,
      'a WebSocket to open',
    );
    let echoed: (() => void) | undefined;
    socket.on('message', () => echoed?.());
    // The message is about the size of a small `changes` message.
    const message = JSON.stringify({
      type: 'changes',
      v: 1,
      from: '1',
      to: '2',
      changes: [{ id: 1, value: 2 }],
    });
    for (let k = 0; k < WARMUP_WRITES + n; k++) {
      const back = new Promise<void>((resolve) => {
        echoed = resolve;
      });
      const started = performance.now();
      socket.send(message);
      await within(back, 10_000, 'a WebSocket echo');
      if (k >= WARMUP_WRITES) times.push(performance.now() - started);
    }
  } finally {
    socket.terminate();
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
  return times;
}

const p = (values: readonly number[], q: number) => formatMs(quantile(values, q));

/**
 * One progress line for a phase: p50 and p99 to each client, until the last, and the write itself.
 *
 * @example
 *   progress(describePropagation(times));
 */
export function describePropagation(times: PropagationTimes): string {
  const last =
    times.clients > 1
      ? `; until all ${times.clients}: p50 ${p(times.lastClient, 0.5)}, p99 ${p(times.lastClient, 0.99)}`
      : '';
  return (
    `${formatCount(times.clients)} client(s) in the ${times.where}, ${formatCount(times.writeMs.length)} writes: p50 ${p(times.perClient, 0.5)}, ` +
    `p99 ${p(times.perClient, 0.99)} per client${last}; the write itself p50 ${p(times.writeMs, 0.5)}`
  );
}

/**
 * The summary lines: p50/p99 from a write to a client's live query (over every client and write),
 * per client count, against the NOTIFY→LISTEN p50 (the ratio) and the WebSocket round trip.
 * Target: p50 under 5 ms and p99 under 25 ms.
 *
 * @example
 *   outcomes.push(...latencyOutcomes([one, hundred], baselines));
 */
export function latencyOutcomes(phases: readonly PropagationTimes[], baselines: LatencyBaselines): Outcome[] {
  const notifyP50 = quantile(baselines.notify, 0.5);
  return phases.map((times) => {
    const p50 = quantile(times.perClient, 0.5);
    const p99 = quantile(times.perClient, 0.99);
    const all = times.clients > 1 ? ` (all ${times.clients}: p50 ${p(times.lastClient, 0.5)})` : '';
    // Clients sharing the server's thread are shown for comparison: their applies delay the server.
    const compared = times.where !== 'own process';
    return {
      measurement: `write → live query, ${formatCount(times.clients)} client${times.clients > 1 ? 's' : ''}${compared ? ` (in the ${times.where})` : ''}`,
      result: `p50 ${formatMs(p50)}, p99 ${formatMs(p99)}${all}`,
      baseline: `NOTIFY p50 ${formatMs(notifyP50)}, p99 ${p(baselines.notify, 0.99)}; ws p50 ${p(baselines.ws, 0.5)}`,
      ratio: `${(p50 / notifyP50).toFixed(1)}x NOTIFY`,
      target: compared ? '(for comparison)' : 'p50 < 5 ms, p99 < 25 ms',
      met: compared ? undefined : p50 < 5 && p99 < 25,
    };
  });
}
