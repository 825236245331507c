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
import { COUNTER_ROWS } from './bench-schema.js';
import type { BenchServer } from './bench-server.js';
import { BenchChild } from './child-bench.js';
import { absoluteNow, type LiveWatchers, type SeenTimes } from './live-watchers.js';
import { formatCount, formatMs, type Outcome } from './outcome.js';

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
 * Sync clients in child processes (sync-clients.ts) with live queries on `counters`: one process,
 * or several with the clients dealt out evenly, so that together they use every core, as clients
 * on devices of their own would not wait for each other.
 *
 * @example
 *   const clients = ClientProcesses.start(bench.url, 2);
 *   await clients.grow(100); // 50 in each
 */
export class ClientProcesses implements LiveWatchers {
  private readonly counts: number[];
  private constructor(private readonly children: readonly BenchChild[]) {
    this.counts = children.map(() => 0);
  }

  static start(url: string, processes = 1): ClientProcesses {
    return new ClientProcesses(
      Array.from({ length: processes }, (_, i) =>
        BenchChild.fork('./sync-clients.ts', [url], `sync client process ${i + 1}`),
      ),
    );
  }

  get clients(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  get where(): string {
    return this.children.length === 1 ? 'own process' : `${this.children.length} own processes`;
  }

  /** Starts `n` more clients, each in the process with the fewest; resolves once their live queries emitted. */
  async grow(n: number, timeoutMs = 180_000): Promise<void> {
    const more = this.counts.map(() => 0);
    for (let k = 0; k < n; k++) {
      const totals = this.counts.map((c, i) => c + more[i]!);
      more[totals.indexOf(Math.min(...totals))]!++;
    }
    await Promise.all(
      this.children.map(async (child, i) => {
        if (more[i] === 0) return;
        this.counts[i] = await child.ask(
          { grow: more[i] },
          (m) => m.ready as number | undefined,
          timeoutMs,
          `${formatCount(more[i]!)} sync clients in their own process to start`,
        );
      }),
    );
  }

  async seen(value: number): Promise<SeenTimes> {
    const each = await Promise.all(
      this.children.map((child, i) =>
        this.counts[i] === 0
          ? { at: [], applied: [] }
          : child.ask(
              { await: value },
              (m) => (m.seen === value ? (m.at as SeenTimes) : undefined),
              WRITE_TIMEOUT_MS,
              `value ${value} to reach every client`,
            ),
      ),
    );
    return { at: each.flatMap((t) => t.at), applied: each.flatMap((t) => t.applied) };
  }

  async close(): Promise<void> {
    await Promise.all(this.children.map((child) => child.close()));
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
  /** Where the clients ran: 'own process', 'N own processes' or 'server process'. */
  readonly where: string;
  /** Whether this phase carries the targets (the others are printed for comparison). */
  readonly target: boolean;
  readonly perClient: number[];
  readonly lastClient: number[];
  /** How long the write itself took to return (its commit included). */
  readonly writeMs: number[];
  /**
   * Where the time went, per write: until the first client's database reported the change
   * (server: commit → capture → notify → read → send; the wire; that client's parse and apply).
   */
  readonly firstApplied: number[];
  /** Per client and write: until its database reported the change (after the clients before it). */
  readonly applied: number[];
  /** Per client and write: from that report until its live query emitted (re-run, compare, emit). */
  readonly rerun: number[];
}

/**
 * Times `writes` sequential updates from the moment each is sent until every client's live query
 * has re-emitted with it.
 *
 * @example
 *   const times = await measurePropagation(bench, watchers, 300, true);
 */
export async function measurePropagation(
  bench: BenchServer,
  watchers: LiveWatchers,
  writes: number,
  target: boolean,
): Promise<PropagationTimes> {
  const writer = await bench.openWriter();
  try {
    const times: PropagationTimes = {
      clients: watchers.clients,
      where: watchers.where,
      target,
      perClient: [],
      lastClient: [],
      writeMs: [],
      firstApplied: [],
      applied: [],
      rerun: [],
    };
    for (let k = 0; k < WARMUP_WRITES + writes; k++) {
      const value = ++written;
      // Asked before the clock starts: asking clients in other processes is a message to each.
      const seen = watchers.seen(value);
      const started = absoluteNow();
      await writer.query('UPDATE counters SET value = $1 WHERE id = $2', [value, k % COUNTER_ROWS]);
      const writeMs = absoluteNow() - started;
      const at = await within(seen, WRITE_TIMEOUT_MS, `write ${k} to reach ${watchers.clients} clients`);
      if (k < WARMUP_WRITES) continue;
      const perClient = at.at.map((t) => t - started);
      times.perClient.push(...perClient);
      times.lastClient.push(Math.max(...perClient));
      times.writeMs.push(writeMs);
      const applied = at.applied.map((t) => t - started);
      times.firstApplied.push(Math.min(...applied));
      times.applied.push(...applied);
      times.rerun.push(...at.at.map((t, i) => t - at.applied[i]!));
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
    `p99 ${p(times.perClient, 0.99)} per client${last}; the write itself p50 ${p(times.writeMs, 0.5)}\n` +
    `  where it goes (p50 / p99): until the first client applied it (server, wire, one client's parse and apply) ${p(times.firstApplied, 0.5)} / ${p(times.firstApplied, 0.99)}; ` +
    `until each client applied it (behind the clients before it in its process) ${p(times.applied, 0.5)} / ${p(times.applied, 0.99)}; ` +
    `live query re-run → emit ${p(times.rerun, 0.5)} / ${p(times.rerun, 0.99)}`
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
    const compared = !times.target;
    return {
      measurement: `write → live query, ${formatCount(times.clients)} client${times.clients > 1 ? 's' : ''}${times.clients > 1 ? ` (${times.where})` : ''}`,
      result: `p50 ${formatMs(p50)}, p99 ${formatMs(p99)}${all}`,
      baseline: `NOTIFY p50 ${formatMs(notifyP50)}, p99 ${p(baselines.notify, 0.99)}; ws p50 ${p(baselines.ws, 0.5)}`,
      ratio: `${(p50 / notifyP50).toFixed(1)}x NOTIFY`,
      target: compared ? '(for comparison)' : 'p50 < 5 ms, p99 < 25 ms',
      met: compared ? undefined : p50 < 5 && p99 < 25,
    };
  });
}
