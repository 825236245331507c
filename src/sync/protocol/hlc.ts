import { SyncProtocolError } from '../../errors.js';

/**
 * One hybrid-logical-clock stamp (Kulkarni et al., "Logical Physical Clocks", 2014): the wall
 * clock in ms since the epoch, a counter that orders stamps within one millisecond, and the id
 * of the node (client or server) that made it, which breaks ties so that no two nodes' stamps
 * are ever equal. Stamps order changes for last-writer-wins (docs/design.md section 4).
 *
 * @example
 *   const stamp: Hlc = { wallMs: 1_700_000_000_000, counter: 0, nodeId: 'client-1' };
 */
export interface Hlc {
  readonly wallMs: number;
  readonly counter: number;
  readonly nodeId: string;
}

/**
 * The largest counter a stamp can carry: five hex digits in the encoded form. A clock that needs
 * more stamps within one millisecond of wall time carries into the next millisecond (its stamps
 * then run ahead of the wall clock until it catches up), as PostgreSQL's `_syncline_db_stamp()`
 * does: a stamp received from a peer can never make a clock stop issuing stamps.
 *
 * @example
 *   if (stamp.counter === HLC_MAX_COUNTER) console.warn('clock saturated for this millisecond');
 */
export const HLC_MAX_COUNTER = 0xfffff;

/**
 * The largest wall time a stamp can carry: 13 decimal digits in the encoded form (the year 2286).
 *
 * @example
 *   const farFuture: Hlc = { wallMs: HLC_MAX_WALL_MS, counter: 0, nodeId: 'x' };
 */
export const HLC_MAX_WALL_MS = 9_999_999_999_999;

/**
 * What a node id may contain: 1 to 64 ASCII letters, digits, `_`, `.` or `-` (a uuid fits). Plain
 * ASCII means code-unit order in JavaScript, byte order in SQLite and `COLLATE "C"` order in
 * PostgreSQL all agree, so encoded stamps sort the same everywhere.
 *
 * @example
 *   HLC_NODE_ID_PATTERN.test('9b2f3c1e-6a47-4d1b-8f0e-2c5d7a9e1b34'); // true
 */
export const HLC_NODE_ID_PATTERN: RegExp = /^[0-9A-Za-z_.-]{1,64}$/;

const WALL_DIGITS = 13;
const COUNTER_DIGITS = 5;
const ENCODED = /^(\d{13})-([0-9a-f]{5})-([0-9A-Za-z_.-]{1,64})$/;

function checkNodeId(nodeId: unknown, what: string): string {
  if (typeof nodeId === 'string' && HLC_NODE_ID_PATTERN.test(nodeId)) return nodeId;
  throw new SyncProtocolError(
    `${what}: the node id ${JSON.stringify(nodeId)} is not valid; use 1 to 64 ASCII letters, digits, '_', '.' or '-' (a uuid fits)`,
  );
}

function checkStamp(stamp: Hlc, what: string): Hlc {
  if (stamp === null || typeof stamp !== 'object') {
    throw new SyncProtocolError(`${what}: expected an HLC stamp object, got ${String(stamp)}`);
  }
  const { wallMs, counter, nodeId } = stamp;
  if (!Number.isSafeInteger(wallMs) || wallMs < 0 || wallMs > HLC_MAX_WALL_MS) {
    throw new SyncProtocolError(
      `${what}: the wall time ${String(wallMs)} is not a whole number of ms between 0 and ${HLC_MAX_WALL_MS}`,
    );
  }
  if (!Number.isSafeInteger(counter) || counter < 0 || counter > HLC_MAX_COUNTER) {
    throw new SyncProtocolError(
      `${what}: the counter ${String(counter)} is not a whole number between 0 and ${HLC_MAX_COUNTER}`,
    );
  }
  checkNodeId(nodeId, what);
  return stamp;
}

/**
 * Orders two stamps: by wall time, then counter, then node id (code-unit order), so ties between
 * nodes are broken by their ids as docs/design.md section 4 requires. Returns -1, 0 or 1; 0 only for the same
 * stamp. `encodeHlc` strings sort the same way.
 *
 * @example
 *   const winner = compareHlc(a, b) >= 0 ? a : b;
 */
export function compareHlc(a: Hlc, b: Hlc): -1 | 0 | 1 {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.nodeId !== b.nodeId) return a.nodeId < b.nodeId ? -1 : 1;
  return 0;
}

/**
 * Encodes a stamp as a fixed-width string that sorts (as plain code units or bytes) in the same
 * order as `compareHlc`: 13 zero-padded decimal digits of wall ms, `-`, 5 lower-case hex digits
 * of counter, `-`, the node id. In PostgreSQL compare such strings with `COLLATE "C"`.
 *
 * @example
 *   encodeHlc({ wallMs: 1_700_000_000_000, counter: 26, nodeId: 'c1' }); // '1700000000000-0001a-c1'
 */
export function encodeHlc(stamp: Hlc): string {
  checkStamp(stamp, 'cannot encode HLC stamp');
  const wall = String(stamp.wallMs).padStart(WALL_DIGITS, '0');
  const counter = stamp.counter.toString(16).padStart(COUNTER_DIGITS, '0');
  return `${wall}-${counter}-${stamp.nodeId}`;
}

/**
 * Parses a string made by `encodeHlc`, accepting only that exact form (so one stamp has one
 * spelling, and sorting strings stays sound). Throws `SyncProtocolError` naming the string and
 * the expected form on anything else.
 *
 * @example
 *   decodeHlc('1700000000000-0001a-c1'); // { wallMs: 1700000000000, counter: 26, nodeId: 'c1' }
 */
export function decodeHlc(encoded: string): Hlc {
  const match = typeof encoded === 'string' ? ENCODED.exec(encoded) : null;
  if (!match) {
    const shown = typeof encoded === 'string' ? JSON.stringify(encoded.slice(0, 100)) : typeof encoded;
    throw new SyncProtocolError(
      `malformed HLC stamp ${shown}: expected 13 decimal digits of wall ms, '-', 5 lower-case hex digits of counter, '-', a node id of 1 to 64 characters [0-9A-Za-z_.-]`,
    );
  }
  return { wallMs: Number(match[1]), counter: Number.parseInt(match[2], 16), nodeId: match[3] };
}

/**
 * A hybrid logical clock for one node. `now()` stamps a local change; `receive()` merges a stamp
 * that came from another node. Every stamp it returns is strictly greater than every stamp it has
 * issued or received, even when the wall clock stands still or goes backwards, and stays close to
 * the wall clock otherwise. `receive()` refuses a stamp more than `maxDriftMs` (default 60 s)
 * ahead of the local wall clock, so a peer with a broken clock cannot drag this one into the
 * future. To stay monotonic across restarts, pass the last stamp you stored to `receive()` first.
 *
 * @example
 *   const clock = new HybridLogicalClock(clientId);
 *   const stamp = encodeHlc(clock.now());          // for a local write
 *   clock.receive(decodeHlc(change.stamp));         // for each change from the server
 */
export class HybridLogicalClock {
  readonly nodeId: string;
  private readonly wallClock: () => number;
  private readonly maxDriftMs: number;
  /** The greatest wall time seen (issued or received); -1 before the first stamp. */
  private wallMs = -1;
  private counter = 0;

  constructor(nodeId: string, now: () => number = Date.now, maxDriftMs = 60_000) {
    this.nodeId = checkNodeId(nodeId, 'cannot create HybridLogicalClock');
    if (!(maxDriftMs >= 0)) {
      throw new SyncProtocolError(`HybridLogicalClock: maxDriftMs must be a number >= 0, got ${maxDriftMs}`);
    }
    this.wallClock = now;
    this.maxDriftMs = maxDriftMs;
  }

  /** The last stamp this clock issued or merged, or undefined before the first. */
  get last(): Hlc | undefined {
    return this.wallMs < 0 ? undefined : { wallMs: this.wallMs, counter: this.counter, nodeId: this.nodeId };
  }

  /** A new stamp for a local event. Throws when the counter for one millisecond is exhausted. */
  now(): Hlc {
    const physical = this.physicalNow();
    if (physical > this.wallMs) return this.advance(physical, 0, physical);
    return this.advance(this.wallMs, this.counter + 1, physical);
  }

  /** Merges a stamp from another node and returns a new local stamp greater than both. */
  receive(remote: Hlc): Hlc {
    const physical = this.checkDrift(remote);
    const wall = Math.max(this.wallMs, remote.wallMs, physical);
    let counter: number;
    if (wall === this.wallMs && wall === remote.wallMs) counter = Math.max(this.counter, remote.counter) + 1;
    else if (wall === this.wallMs) counter = this.counter + 1;
    else if (wall === remote.wallMs) counter = remote.counter + 1;
    else counter = 0;
    return this.advance(wall, counter, physical);
  }

  /**
   * Throws (as `receive` would) when `remote` is not a valid stamp or is more than `maxDriftMs`
   * ahead of the wall clock, without merging it: a server checks a batch's stamps before it applies
   * the batch and merges them only once the batch commits. Returns the wall clock's reading.
   */
  checkDrift(remote: Hlc): number {
    checkStamp(remote, 'cannot merge a received HLC stamp');
    const physical = this.physicalNow();
    if (remote.wallMs - physical > this.maxDriftMs) {
      throw new SyncProtocolError(
        `received HLC stamp ${encodeHlc(remote)} is ${remote.wallMs - physical} ms ahead of this clock (more than the ${this.maxDriftMs} ms allowed): the sending node's clock is wrong; fix its time, or raise maxDriftMs`,
      );
    }
    return physical;
  }

  private physicalNow(): number {
    const raw = this.wallClock();
    const ms = Math.floor(raw);
    if (!Number.isSafeInteger(ms) || ms < 0 || ms > HLC_MAX_WALL_MS) {
      throw new SyncProtocolError(
        `HybridLogicalClock: the wall clock returned ${raw}, expected ms since the epoch between 0 and ${HLC_MAX_WALL_MS}`,
      );
    }
    return ms;
  }

  /**
   * Commits a new state. A counter past HLC_MAX_COUNTER carries into the next millisecond, which
   * keeps every stamp greater than the last; only the end of representable time (the year 2286)
   * throws.
   */
  private advance(wallMs: number, counter: number, physical: number): Hlc {
    if (counter > HLC_MAX_COUNTER) {
      if (wallMs >= HLC_MAX_WALL_MS) {
        throw new SyncProtocolError(
          `HybridLogicalClock "${this.nodeId}": no stamp after wall time ${wallMs} ms is representable (the wall clock reads ${physical} ms)`,
        );
      }
      wallMs += 1;
      counter = 0;
    }
    this.wallMs = wallMs;
    this.counter = counter;
    return { wallMs, counter, nodeId: this.nodeId };
  }
}
