import { describe, expect, it } from 'vitest';
import { SyncProtocolError } from '../../src/errors.js';
import {
  compareHlc,
  decodeHlc,
  encodeHlc,
  HLC_MAX_COUNTER,
  HLC_MAX_WALL_MS,
  type Hlc,
  HybridLogicalClock,
} from '../../src/sync/protocol/hlc.js';

/**
 * The hybrid logical clock orders every change for last-writer-wins. It must never go backwards,
 * whatever the wall clock does, must stay ahead of every stamp it has seen, must refuse stamps
 * from a peer whose clock runs far ahead, and its string form must sort like the stamps.
 */

const T0 = 1_700_000_000_000;

/** A wall clock the test moves by hand. */
function manualClock(start = T0) {
  const clock = { ms: start, now: () => clock.ms };
  return clock;
}

function expectStrictlyIncreasing(stamps: Hlc[]) {
  for (let i = 1; i < stamps.length; i++) expect(compareHlc(stamps[i - 1], stamps[i])).toBe(-1);
}

/** A small seeded generator (mulberry32), so a failing random case can be replayed. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('HybridLogicalClock.now', () => {
  it('follows the wall clock when it moves forward', () => {
    const wall = manualClock();
    const clock = new HybridLogicalClock('a', wall.now);
    expect(clock.now()).toEqual({ wallMs: T0, counter: 0, nodeId: 'a' });
    wall.ms += 5;
    expect(clock.now()).toEqual({ wallMs: T0 + 5, counter: 0, nodeId: 'a' });
  });

  it('counts up under a frozen wall clock', () => {
    const clock = new HybridLogicalClock('a', () => T0);
    const stamps = Array.from({ length: 1000 }, () => clock.now());
    expectStrictlyIncreasing(stamps);
    expect(stamps[999]).toEqual({ wallMs: T0, counter: 999, nodeId: 'a' });
  });

  it('stays monotonic when the wall clock goes backwards, and catches up when it passes again', () => {
    const wall = manualClock();
    const clock = new HybridLogicalClock('a', wall.now);
    const stamps = [clock.now()];
    wall.ms -= 10_000; // an NTP correction, say
    for (let i = 0; i < 5; i++) stamps.push(clock.now());
    expect(stamps.every((s) => s.wallMs === T0)).toBe(true);
    wall.ms = T0 + 1;
    stamps.push(clock.now());
    expectStrictlyIncreasing(stamps);
    expect(stamps.at(-1)).toEqual({ wallMs: T0 + 1, counter: 0, nodeId: 'a' });
  });

  it('truncates a fractional wall clock to whole ms', () => {
    const clock = new HybridLogicalClock('a', () => T0 + 0.75);
    expect(clock.now().wallMs).toBe(T0);
  });

  it('carries a full counter into the next millisecond instead of throwing, and stays monotonic', () => {
    const wall = manualClock();
    const clock = new HybridLogicalClock('a', wall.now);
    // A peer's stamp with the counter nearly full (issue 17: one user could freeze the server's clock).
    clock.receive({ wallMs: T0, counter: HLC_MAX_COUNTER - 1, nodeId: 'b' });
    expect(clock.last).toEqual({ wallMs: T0, counter: HLC_MAX_COUNTER, nodeId: 'a' });
    const stamps = [clock.last!, clock.now(), clock.now()];
    expect(stamps[1]).toEqual({ wallMs: T0 + 1, counter: 0, nodeId: 'a' });
    expect(stamps[2]).toEqual({ wallMs: T0 + 1, counter: 1, nodeId: 'a' });
    expect(clock.receive({ wallMs: T0 + 1, counter: HLC_MAX_COUNTER, nodeId: 'b' })).toEqual({
      wallMs: T0 + 2,
      counter: 0,
      nodeId: 'a',
    });
    expectStrictlyIncreasing([...stamps, clock.last!]);
    wall.ms += 10;
    expect(clock.now()).toEqual({ wallMs: T0 + 10, counter: 0, nodeId: 'a' });
  });

  it('carries only after HLC_MAX_COUNTER stamps within one millisecond', () => {
    const clock = new HybridLogicalClock('a', () => T0);
    for (let i = 0; i <= HLC_MAX_COUNTER; i++) clock.now();
    expect(clock.last).toEqual({ wallMs: T0, counter: HLC_MAX_COUNTER, nodeId: 'a' });
    expect(clock.now()).toEqual({ wallMs: T0 + 1, counter: 0, nodeId: 'a' });
  });

  it('throws only past the last representable millisecond', () => {
    const clock = new HybridLogicalClock('a', () => HLC_MAX_WALL_MS, 0);
    clock.receive({ wallMs: HLC_MAX_WALL_MS, counter: HLC_MAX_COUNTER - 1, nodeId: 'b' });
    expect(() => clock.now()).toThrow(/no stamp after wall time 9999999999999 ms/);
  });

  it('checkDrift refuses a stamp too far ahead without merging it', () => {
    const wall = manualClock();
    const clock = new HybridLogicalClock('a', wall.now, 10);
    expect(clock.checkDrift({ wallMs: T0 + 10, counter: 5, nodeId: 'b' })).toBe(T0);
    expect(clock.last).toBeUndefined();
    expect(() => clock.checkDrift({ wallMs: T0 + 11, counter: 0, nodeId: 'b' })).toThrow(
      /more than the 10 ms/,
    );
  });

  it('rejects a broken wall clock', () => {
    expect(() => new HybridLogicalClock('a', () => Number.NaN).now()).toThrow(/wall clock returned NaN/);
    expect(() => new HybridLogicalClock('a', () => -1).now()).toThrow(SyncProtocolError);
  });
});

describe('HybridLogicalClock.receive', () => {
  it('jumps ahead of a remote stamp from later in time', () => {
    const clock = new HybridLogicalClock('a', () => T0);
    clock.now();
    const merged = clock.receive({ wallMs: T0 + 500, counter: 7, nodeId: 'b' });
    expect(merged).toEqual({ wallMs: T0 + 500, counter: 8, nodeId: 'a' });
    expect(clock.now()).toEqual({ wallMs: T0 + 500, counter: 9, nodeId: 'a' });
  });

  it('takes the larger counter when local and remote share a wall time', () => {
    const clock = new HybridLogicalClock('a', () => T0 - 100);
    clock.receive({ wallMs: T0, counter: 3, nodeId: 'b' });
    expect(clock.receive({ wallMs: T0, counter: 10, nodeId: 'c' })).toEqual({
      wallMs: T0,
      counter: 11,
      nodeId: 'a',
    });
    expect(clock.receive({ wallMs: T0, counter: 2, nodeId: 'c' })).toEqual({
      wallMs: T0,
      counter: 12,
      nodeId: 'a',
    });
  });

  it('keeps its own time when the remote stamp is older', () => {
    const wall = manualClock();
    const clock = new HybridLogicalClock('a', wall.now);
    clock.now();
    expect(clock.receive({ wallMs: T0 - 5000, counter: 99, nodeId: 'b' })).toEqual({
      wallMs: T0,
      counter: 1,
      nodeId: 'a',
    });
    wall.ms += 3;
    expect(clock.receive({ wallMs: T0 - 5000, counter: 99, nodeId: 'b' })).toEqual({
      wallMs: T0 + 3,
      counter: 0,
      nodeId: 'a',
    });
  });

  it('stays strictly ahead of everything issued and received, over random interleavings', () => {
    const next = random(42);
    const wallA = manualClock();
    const wallB = manualClock(T0 + 2000);
    const a = new HybridLogicalClock('node-a', wallA.now);
    const b = new HybridLogicalClock('node-b', wallB.now);
    // The greatest stamp each clock has issued or received so far.
    const seen = new Map<HybridLogicalClock, Hlc>();
    const record = (clock: HybridLogicalClock, stamp: Hlc) => {
      const before = seen.get(clock);
      if (!before || compareHlc(stamp, before) > 0) seen.set(clock, stamp);
    };
    for (let i = 0; i < 5000; i++) {
      // Each wall clock jitters forwards and backwards on its own.
      wallA.ms += Math.floor(next() * 7) - 3;
      wallB.ms += Math.floor(next() * 7) - 3;
      const [clock, other] = next() < 0.5 ? [a, b] : [b, a];
      let stamp: Hlc;
      if (next() < 0.5) {
        stamp = clock.now();
      } else {
        const remote = other.now();
        record(other, remote);
        stamp = clock.receive(remote);
        expect(compareHlc(stamp, remote)).toBe(1);
        record(clock, remote);
      }
      const before = seen.get(clock);
      if (before) expect(compareHlc(stamp, before)).toBe(1);
      record(clock, stamp);
      // A clock's stamps never fall behind its own wall clock.
      expect(stamp.wallMs).toBeGreaterThanOrEqual(clock === a ? wallA.ms : wallB.ms);
    }
  });

  it('rejects a remote stamp further ahead than maxDriftMs, without moving the clock', () => {
    const clock = new HybridLogicalClock('a', () => T0);
    const before = clock.now();
    const ahead = { wallMs: T0 + 60_001, counter: 0, nodeId: 'b' };
    expect(() => clock.receive(ahead)).toThrow(SyncProtocolError);
    expect(() => clock.receive(ahead)).toThrow(
      /60001 ms ahead of this clock \(more than the 60000 ms allowed\)/,
    );
    expect(clock.last).toEqual(before);
    expect(clock.receive({ wallMs: T0 + 60_000, counter: 0, nodeId: 'b' }).wallMs).toBe(T0 + 60_000);
  });

  it('honours a custom maxDriftMs', () => {
    const clock = new HybridLogicalClock('a', () => T0, 10);
    expect(() => clock.receive({ wallMs: T0 + 11, counter: 0, nodeId: 'b' })).toThrow(/more than the 10 ms/);
    expect(clock.receive({ wallMs: T0 + 10, counter: 0, nodeId: 'b' }).wallMs).toBe(T0 + 10);
  });

  it('refuses a malformed remote stamp', () => {
    const clock = new HybridLogicalClock('a', () => T0);
    expect(() => clock.receive({ wallMs: 1.5, counter: 0, nodeId: 'b' })).toThrow(/wall time 1.5/);
    expect(() => clock.receive({ wallMs: T0, counter: HLC_MAX_COUNTER + 1, nodeId: 'b' })).toThrow(
      /counter 1048576/,
    );
    expect(() => clock.receive({ wallMs: T0, counter: 0, nodeId: 'has space' })).toThrow(
      /node id "has space"/,
    );
    expect(() => clock.receive(null as unknown as Hlc)).toThrow(SyncProtocolError);
  });

  it('carries a remote stamp with a full counter into the next millisecond', () => {
    const clock = new HybridLogicalClock('a', () => T0);
    clock.now();
    expect(clock.receive({ wallMs: T0, counter: HLC_MAX_COUNTER, nodeId: 'b' })).toEqual({
      wallMs: T0 + 1,
      counter: 0,
      nodeId: 'a',
    });
  });

  it('resumes after a restart from its last stored stamp', () => {
    const stored = encodeHlc({ wallMs: T0 + 30_000, counter: 4, nodeId: 'a' });
    const clock = new HybridLogicalClock('a', () => T0);
    clock.receive(decodeHlc(stored));
    expect(compareHlc(clock.now(), decodeHlc(stored))).toBe(1);
  });
});

describe('HybridLogicalClock construction', () => {
  it('validates the node id and maxDriftMs', () => {
    expect(() => new HybridLogicalClock('')).toThrow(/node id "" is not valid/);
    expect(() => new HybridLogicalClock('x'.repeat(65))).toThrow(SyncProtocolError);
    expect(() => new HybridLogicalClock('ünï')).toThrow(SyncProtocolError);
    expect(() => new HybridLogicalClock('a', Date.now, -1)).toThrow(/maxDriftMs/);
    expect(new HybridLogicalClock('9b2f3c1e-6a47-4d1b-8f0e-2c5d7a9e1b34').nodeId).toHaveLength(36);
  });

  it('uses Date.now by default', () => {
    const before = Date.now();
    const stamp = new HybridLogicalClock('a').now();
    expect(stamp.wallMs).toBeGreaterThanOrEqual(before);
    expect(stamp.wallMs).toBeLessThanOrEqual(Date.now());
  });
});

describe('compareHlc', () => {
  it('orders by wall time, then counter, then node id', () => {
    const s = (wallMs: number, counter: number, nodeId: string): Hlc => ({ wallMs, counter, nodeId });
    expect(compareHlc(s(1, 9, 'z'), s(2, 0, 'a'))).toBe(-1);
    expect(compareHlc(s(2, 0, 'z'), s(2, 1, 'a'))).toBe(-1);
    expect(compareHlc(s(2, 1, 'a'), s(2, 1, 'b'))).toBe(-1);
    expect(compareHlc(s(2, 1, 'b'), s(2, 1, 'a'))).toBe(1);
    expect(compareHlc(s(2, 1, 'a'), s(2, 1, 'a'))).toBe(0);
  });
});

describe('encodeHlc / decodeHlc', () => {
  it('writes fixed-width fields', () => {
    expect(encodeHlc({ wallMs: T0, counter: 26, nodeId: 'c1' })).toBe('1700000000000-0001a-c1');
    expect(encodeHlc({ wallMs: 0, counter: 0, nodeId: 'n' })).toBe('0000000000000-00000-n');
    expect(encodeHlc({ wallMs: HLC_MAX_WALL_MS, counter: HLC_MAX_COUNTER, nodeId: 'n' })).toBe(
      '9999999999999-fffff-n',
    );
  });

  it('round-trips', () => {
    const stamp = { wallMs: T0 + 123, counter: 0xabcde, nodeId: 'Client_1.x-y' };
    expect(decodeHlc(encodeHlc(stamp))).toEqual(stamp);
  });

  it('refuses to encode a stamp out of range', () => {
    expect(() => encodeHlc({ wallMs: -1, counter: 0, nodeId: 'a' })).toThrow(/wall time -1/);
    expect(() => encodeHlc({ wallMs: HLC_MAX_WALL_MS + 1, counter: 0, nodeId: 'a' })).toThrow(
      SyncProtocolError,
    );
    expect(() => encodeHlc({ wallMs: 0, counter: -1, nodeId: 'a' })).toThrow(/counter -1/);
    expect(() => encodeHlc({ wallMs: 0, counter: 0, nodeId: 'a/b' })).toThrow(/node id "a\/b"/);
  });

  it('sorts as strings exactly like compareHlc, over many random stamps', () => {
    const next = random(7);
    const nodeChars = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_.-';
    const nodes = Array.from({ length: 12 }, (_, i) =>
      Array.from({ length: 1 + (i % 5) }, () => nodeChars[Math.floor(next() * nodeChars.length)]).join(''),
    );
    nodes.push('a', 'ab', 'a-', 'A', 'a.b', 'a_b');
    const pick = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)];
    const walls = [0, 1, 9, 10, 999, T0 - 1, T0, T0 + 1, HLC_MAX_WALL_MS];
    const counters = [0, 1, 9, 10, 15, 16, 255, 256, HLC_MAX_COUNTER];
    const stamps: Hlc[] = Array.from({ length: 3000 }, () => ({
      wallMs: next() < 0.5 ? pick(walls) : Math.floor(next() * HLC_MAX_WALL_MS),
      counter: next() < 0.5 ? pick(counters) : Math.floor(next() * HLC_MAX_COUNTER),
      nodeId: pick(nodes),
    }));
    const byCompare = [...stamps].sort(compareHlc).map(encodeHlc);
    const byString = stamps.map(encodeHlc).sort();
    expect(byString).toEqual(byCompare);
    // And pairwise, to be sure that equal strings mean equal stamps.
    for (let i = 0; i < 2000; i++) {
      const x = pick(stamps);
      const y = pick(stamps);
      const ex = encodeHlc(x);
      const ey = encodeHlc(y);
      expect(Math.sign(ex < ey ? -1 : ex > ey ? 1 : 0)).toBe(compareHlc(x, y));
    }
  });

  it.each([
    ['', 'empty'],
    ['1700000000000-0001a', 'no node id'],
    ['170000000000-0001a-c1', 'a wall time of 12 digits'],
    ['17000000000000-0001a-c1', 'a wall time of 14 digits'],
    ['1700000000000-001a-c1', 'a counter of 4 digits'],
    ['1700000000000-0001A-c1', 'an upper-case counter'],
    ['1700000000000-0001g-c1', 'a counter that is not hex'],
    ['1700000000000_0001a_c1', 'other separators'],
    ['-700000000000-0001a-c1', 'a negative wall time'],
    ['1700000000000-0001a-c 1', 'a space in the node id'],
    ['1700000000000-0001a-ç', 'a non-ASCII node id'],
    [`1700000000000-0001a-${'x'.repeat(65)}`, 'a node id of 65 characters'],
    [' 1700000000000-0001a-c1', 'leading space'],
    ['1700000000000-0001a-c1\n', 'trailing newline'],
  ])('rejects %j (%s)', (text) => {
    expect(() => decodeHlc(text)).toThrow(SyncProtocolError);
    expect(() => decodeHlc(text)).toThrow(/malformed HLC stamp .*expected 13 decimal digits of wall ms/);
  });

  it('rejects a value that is not a string', () => {
    expect(() => decodeHlc(42 as unknown as string)).toThrow(/malformed HLC stamp number/);
  });
});
