/**
 * How long the client waits between connection attempts: `initialMs` (default 200) before the
 * second attempt, doubling up to `maxMs` (default 10,000).
 *
 * @example
 *   syncClient(db, { url, shapes, backoff: { initialMs: 500, maxMs: 30_000 } });
 */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
}

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"):
 * each delay is uniform between 0 and the current cap, so clients cut off together do not all
 * come back at the same moment. `reset()` after a connection succeeds.
 *
 * @example
 *   const backoff = new Backoff({ initialMs: 200, maxMs: 10_000 });
 *   await sleep(backoff.next());
 */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(
    options: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.initialMs = options.initialMs ?? 200;
    this.maxMs = options.maxMs ?? 10_000;
  }

  /** The delay before the next attempt, in ms; each call moves one attempt on. */
  next(): number {
    const cap = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(this.random() * cap);
  }

  /** Starts over from `initialMs` (after a successful connection). */
  reset(): void {
    this.attempt = 0;
  }
}
