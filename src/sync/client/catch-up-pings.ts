import { comparePositions } from '../protocol/messages-position.js';

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * The `caughtUp()` calls of a client and the pings that answer them. One ping is in flight at a
 * time (the server answers only a few at once): calls made meanwhile wait for the next ping, sent
 * when its pong comes, and a ping lost with its connection is sent again on the next one. A pong
 * says how far the server's stream reached; its callers resolve once the cursor gets there.
 *
 * @example
 *   const catchUps = new CatchUpPings((id) => session?.sendPing(id) ?? false);
 *   await catchUps.wait();
 */
export class CatchUpPings {
  /** Callers no ping sent so far covers. */
  private waiting: Waiter[] = [];
  private inFlight: { id: string; waiters: Waiter[] } | undefined;
  /** Answered: these resolve once the cursor reaches `position`. */
  private readonly answered: { position: string; waiters: Waiter[] }[] = [];
  private pings = 0;

  /** `sendPing` sends a ping with this id, false when there is no connection to send it on. */
  constructor(private readonly sendPing: (id: string) => boolean) {}

  /** Resolves once the client applied every server change committed before the call. */
  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.send();
    });
  }

  /** A new connection was welcomed: the ping in flight, if any, went with the old one. */
  reconnected(): void {
    if (this.inFlight) this.waiting.unshift(...this.inFlight.waiters);
    this.inFlight = undefined;
    this.send();
  }

  /** A pong came (one for another ping is ignored); `cursor` is the client's now. */
  pong(id: string | undefined, position: string | undefined, cursor: string | undefined): void {
    if (id === undefined || this.inFlight?.id !== id) return;
    const { waiters } = this.inFlight;
    this.inFlight = undefined;
    if (position === undefined) for (const waiter of waiters) waiter.resolve();
    else this.answered.push({ position, waiters });
    this.cursorMoved(cursor);
    this.send();
  }

  /** The cursor moved: resolves the callers whose pong position it reached. */
  cursorMoved(cursor: string | undefined): void {
    if (cursor === undefined) return;
    for (let i = this.answered.length - 1; i >= 0; i--) {
      const entry = this.answered[i]!;
      if (comparePositions(cursor, entry.position) < 0) continue;
      this.answered.splice(i, 1);
      for (const waiter of entry.waiters) waiter.resolve();
    }
  }

  /** Rejects every caller: the client stopped. */
  rejectAll(error: Error): void {
    const all = [
      ...this.waiting,
      ...(this.inFlight?.waiters ?? []),
      ...this.answered.flatMap((entry) => entry.waiters),
    ];
    this.waiting = [];
    this.inFlight = undefined;
    this.answered.length = 0;
    for (const waiter of all) waiter.reject(error);
  }

  private send(): void {
    if (this.inFlight || this.waiting.length === 0) return;
    const id = `caught-up-${++this.pings}`;
    if (!this.sendPing(id)) return;
    this.inFlight = { id, waiters: this.waiting };
    this.waiting = [];
  }
}
