import { decodeHlc, encodeHlc, type Hlc, HybridLogicalClock } from '../protocol/hlc.js';

/**
 * The client's hybrid logical clock (node id = client id). Local writes are stamped at the wall
 * time SQLite recorded for them (`wall_ms` in the outbox), not at the time the stamping pass runs,
 * so a write made offline an hour ago is not stamped as if made now; the clock still never issues
 * a stamp lower than one it issued or received before.
 *
 * @example
 *   const clock = new ClientClock(clientId);
 *   clock.receive(welcome.hlc);
 *   const stamp = clock.stampAt(row.wall_ms);
 */
export class ClientClock {
  private wallOverride: number | undefined;
  private readonly clock: HybridLogicalClock;
  /** The last stamp received and its decoding: the changes of one write share one stamp. */
  private lastReceived: { encoded: string; stamp: Hlc } | undefined;

  constructor(nodeId: string, now: () => number = Date.now) {
    this.clock = new HybridLogicalClock(nodeId, () => this.wallOverride ?? now());
  }

  /** A stamp for local writes made at `wallMs` (ms since the epoch), as an encoded string. */
  stampAt(wallMs: number): string {
    this.wallOverride = wallMs;
    try {
      return encodeHlc(this.clock.now());
    } finally {
      this.wallOverride = undefined;
    }
  }

  /** Merges an encoded stamp from the server (or one stored before a restart). */
  receive(stamp: string): void {
    let last = this.lastReceived;
    if (last?.encoded !== stamp) this.lastReceived = last = { encoded: stamp, stamp: decodeHlc(stamp) };
    this.clock.receive(last.stamp);
  }

  /** The last stamp issued or merged, encoded; undefined before the first. */
  get last(): string | undefined {
    const last = this.clock.last;
    return last ? encodeHlc(last) : undefined;
  }
}
