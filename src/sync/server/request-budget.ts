/** Pushes one connection may have waiting behind the one being applied (a client sends one at a time). */
export const MAX_WAITING_PUSHES = 1;
/** Pings one connection may have unanswered (a client has a keep-alive and a `caughtUp` at most). */
export const MAX_PENDING_PINGS = 4;
/** Shape changes (`subscribe`, `unsubscribe`) one connection may have unanswered. */
export const MAX_PENDING_SHAPE_CHANGES = 4;
/** Requests queued on one connection past which the server stops reading its socket for a while. */
export const PAUSE_AT_QUEUED = 8;

/** The messages a signed-in client sends that ask something of the server. */
export type RequestKind = 'push' | 'fetch' | 'ping' | 'subscribe' | 'unsubscribe';

/**
 * What one connection may ask of the server at once, so that a client cannot make the server queue
 * work and memory without bound: one push waiting behind the one being applied, a few pings and shape changes, and
 * past `PAUSE_AT_QUEUED` queued requests the socket is not read (TCP then holds the client back)
 * until the queue is short again. `maxProtocolErrors` invalid or refused messages close the
 * connection.
 *
 * @example
 *   const budget = new RequestBudget(100, { pause: () => socket.pause(), resume: () => socket.resume() });
 *   if (!budget.take('push')) refuse('too_many_requests');
 */
export class RequestBudget {
  private errors = 0;
  private pushes = 0;
  private pings = 0;
  private shapeChanges = 0;
  private queued = 0;
  private paused = false;

  constructor(
    private readonly maxProtocolErrors: number,
    private readonly socket: { pause(): void; resume(): void },
  ) {}

  /** Counts a protocol error; true once there were more than `maxProtocolErrors`. */
  protocolError(): boolean {
    return ++this.errors > this.maxProtocolErrors;
  }

  /**
   * Takes a place for a request; false when the connection has as many of its kind as it may
   * (the request is then refused). Give the place back with `done` when it is answered.
   */
  take(kind: RequestKind): boolean {
    if (kind === 'subscribe' || kind === 'unsubscribe') {
      if (this.shapeChanges >= MAX_PENDING_SHAPE_CHANGES) return false;
      this.shapeChanges++;
    }
    if (kind === 'ping') {
      if (this.pings >= MAX_PENDING_PINGS) return false;
      this.pings++;
      return true;
    }
    if (kind === 'push') {
      if (this.pushes > MAX_WAITING_PUSHES) return false;
      this.pushes++;
    }
    if (++this.queued >= PAUSE_AT_QUEUED && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    return true;
  }

  /** A request taken with `take` was answered (or dropped). */
  done(kind: RequestKind): void {
    if (kind === 'subscribe' || kind === 'unsubscribe') this.shapeChanges--;
    if (kind === 'ping') {
      this.pings--;
      return;
    }
    if (kind === 'push') this.pushes--;
    if (--this.queued < PAUSE_AT_QUEUED && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }
}
