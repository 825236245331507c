/**
 * Live queries on `counters` in bench clients, and when each showed a written value: what the
 * propagation latency is timed against. The same recorder runs in the bench process (clients
 * sharing the server's thread) and in `sync-clients.ts` (clients in a process of their own).
 * Times are absolute (`performance.timeOrigin + performance.now()`), so they compare across
 * processes on one machine.
 */
import { performance } from 'node:perf_hooks';
import { within } from '../support/bounded-wait.js';
import type { BenchClient } from './bench-client.js';
import { counters } from './bench-schema.js';

/** Now, in ms, comparable between processes of this machine. */
export function absoluteNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * When each client (in the recorder's order) showed a value, in absolute ms: `at`, its live query
 * emitted it; `applied`, its database reported the change (the sync client applied it and said so),
 * just before the live query re-ran. `applied` to `at` is the live query's own part.
 */
export interface SeenTimes {
  readonly at: number[];
  readonly applied: number[];
}

/**
 * Clients whose live queries can be asked when they showed a value.
 *
 * @example
 *   const times = await watchers.seen(value, 30_000); // one absolute time per client
 */
export interface LiveWatchers {
  readonly clients: number;
  /** Where the clients run, for the report: 'own process', '2 own processes', 'server process'. */
  readonly where: string;
  /** When each client's live query first showed a `counters` row with `value` (absolute ms). */
  seen(value: number): Promise<SeenTimes>;
  close(): Promise<void>;
}

/**
 * Records, per client, when its live query (`select().from(counters).watch()`) first showed each
 * value. Written values only grow and each write waits for every client, so an emit's largest
 * value is the one new value it can bring.
 *
 * @example
 *   const recorder = new SeenRecorder('server process');
 *   await recorder.watch(clients);
 *   const times = await recorder.seen(42);
 */
export class SeenRecorder implements LiveWatchers {
  private readonly highest: number[] = [];
  private readonly times = new Map<number, SeenTimes>();
  /** When each client's database last reported a change to `counters`. */
  private readonly notified: number[] = [];
  /** How many clients have not shown each value yet (counted, not scanned: this runs per client). */
  private readonly missing = new Map<number, number>();
  private readonly waiting = new Map<number, { done: () => void; fail: (error: Error) => void }>();
  private readonly stops: (() => void)[] = [];
  private failure: Error | undefined;

  /** `where`: where the watched clients run, as the report names it. */
  constructor(readonly where: string) {}

  get clients(): number {
    return this.highest.length;
  }

  /** Subscribes to each client's live query; resolves once every one emitted a first result. */
  async watch(clients: readonly BenchClient[], timeoutMs = 30_000): Promise<void> {
    const first: Promise<void>[] = [];
    for (const client of clients) {
      const i = this.highest.length;
      this.highest.push(Number.NEGATIVE_INFINITY);
      this.notified.push(Number.NaN);
      // Subscribed before the live query, so it hears the change before the query re-runs.
      this.stops.push(
        client.db.onTablesChanged([counters], () => {
          this.notified[i] = absoluteNow();
        }),
      );
      first.push(
        new Promise<void>((resolve) => {
          this.stops.push(
            client.db
              .select()
              .from(counters)
              .watch()
              .subscribe(
                (rows) => {
                  const now = absoluteNow();
                  let value = Number.NEGATIVE_INFINITY;
                  for (const row of rows) value = Math.max(value, row.value);
                  // The first result with rows is the value already there, not a write to time. A
                  // client whose snapshot has not arrived yet shows no rows: it is not ready, else
                  // a snapshot holding the first timed write would be taken for that first result
                  // and the write never seen (the 2-process phase waited 30 s for its first write).
                  if (this.highest[i] === Number.NEGATIVE_INFINITY) {
                    this.highest[i] = value;
                    if (rows.length > 0) resolve();
                  } else if (value > this.highest[i]!) this.record(i, value, now);
                },
                (error) => {
                  this.failure ??= error as Error;
                  // Whoever waits hears it now, not when its wait runs out.
                  for (const { fail } of this.waiting.values()) fail(this.failed());
                },
              ),
          );
        }),
      );
    }
    await within(Promise.all(first), timeoutMs, `${clients.length} live queries to emit a first result`);
  }

  private record(i: number, value: number, at: number): void {
    this.highest[i] = value;
    let times = this.times.get(value);
    if (!times) {
      const n = this.highest.length;
      times = { at: new Array(n).fill(undefined), applied: new Array(n).fill(undefined) };
      this.times.set(value, times);
      this.missing.set(value, n);
    }
    // Called once per client and value (only for a value above the client's highest).
    times.at[i] = at;
    times.applied[i] = this.notified[i]!;
    const left = this.missing.get(value)! - 1;
    this.missing.set(value, left);
    if (left === 0) this.waiting.get(value)?.done();
  }

  /** Resolves with every client's time for `value` once all have shown it (then forgets it). */
  seen(value: number): Promise<SeenTimes> {
    return new Promise((resolve, reject) => {
      if (this.failure) {
        reject(this.failed());
        return;
      }
      const done = () => {
        this.waiting.delete(value);
        const times = this.times.get(value)!;
        this.times.delete(value);
        this.missing.delete(value);
        resolve(times);
      };
      if (this.missing.get(value) === 0) done();
      else this.waiting.set(value, { done, fail: reject });
    });
  }

  private failed(): Error {
    return new Error(`bench: a live query failed: ${this.failure?.message}`);
  }

  async close(): Promise<void> {
    this.stop();
  }

  stop(): void {
    for (const stop of this.stops.splice(0)) stop();
  }
}
