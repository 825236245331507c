/**
 * Timing for benchmarks that compare several contenders on one task in the same run: warm-up,
 * calibration, samples taken in turns (so drift and background noise hit every contender alike),
 * medians, and plain-text tables.
 */
import { performance } from 'node:perf_hooks';

/** One operation to time. `run` may return a promise; it is awaited before the next call. */
export interface Operation {
  /** Runs the operation once; `i` counts calls, for picking varied inputs. */
  run(i: number): unknown;
  /**
   * Untimed work before every call (emptying a table before a bulk insert). When given, each call is
   * timed on its own, so use it only for operations that take a millisecond or more.
   */
  beforeEach?(): unknown;
}

export interface MeasureOptions {
  /** Samples per contender; the median is reported (default 7). */
  samples?: number;
  /** How long one sample should take, in ms (default 150). */
  sampleMs?: number;
  /** How long to warm up (and calibrate) each contender, in ms (default 250). */
  warmupMs?: number;
  /** Stops a warm-up after this many calls even when it is short of `warmupMs` (default 100,000). */
  maxWarmupCalls?: number;
}

export interface Measurement {
  /** Median time per operation, in µs. */
  readonly medianUs: number;
  /** Time per operation of each sample, in µs. */
  readonly samplesUs: readonly number[];
  /** Operations in one sample. */
  readonly perSample: number;
  /** The samples' interquartile range relative to the median: how far apart repeated samples fall. */
  readonly spread: number;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

const collectGarbage = (globalThis as { gc?: () => void }).gc;

/** The q-quantile (0..1) of values, interpolating between neighbours. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  const high = Math.ceil(at);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (at - low);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

class Timer {
  /** Whether `run` returned a value rather than a promise; a synchronous loop has no await to pay. */
  sync = true;
  calls = 0;

  constructor(readonly operation: Operation) {}

  /** Total ms spent in `n` calls, `beforeEach` excluded. */
  async time(n: number): Promise<number> {
    const { operation } = this;
    if (operation.beforeEach) {
      let total = 0;
      for (let k = 0; k < n; k++) {
        const before = operation.beforeEach();
        if (isThenable(before)) await before;
        const start = performance.now();
        const result = operation.run(this.calls++);
        if (isThenable(result)) await result;
        total += performance.now() - start;
      }
      return total;
    }
    const first = this.calls;
    const start = performance.now();
    if (this.sync) {
      for (let k = 0; k < n; k++) operation.run(first + k);
    } else {
      for (let k = 0; k < n; k++) await operation.run(first + k);
    }
    const elapsed = performance.now() - start;
    this.calls += n;
    return elapsed;
  }

  /** Runs for about `ms` and returns the time per call of the second half, in ms. */
  async warmUp(ms: number, maxCalls: number): Promise<number> {
    const result = this.operation.beforeEach ? undefined : this.operation.run(this.calls++);
    if (isThenable(result)) {
      this.sync = false;
      await result;
    }
    let batch = 1;
    let spent = 0;
    let lastPerCall = Number.POSITIVE_INFINITY;
    let calls = 0;
    while (spent < ms && calls < maxCalls) {
      const elapsed = await this.time(batch);
      spent += elapsed;
      calls += batch;
      lastPerCall = elapsed / batch;
      // Double the batch until one takes a fair part of the warm-up, so the estimate is stable.
      if (elapsed < ms / 8) batch *= 2;
    }
    return lastPerCall;
  }
}

/**
 * Measures each operation: warms each up, sizes its samples to `sampleMs`, then takes the samples in
 * turns (contender A, B, C, then A, B, C again) and reports the median time per operation.
 *
 * @example
 *   const results = await measureAll({ raw: { run: (i) => stmt.get(ids[i % ids.length]) } });
 *   console.log(results.raw.medianUs);
 */
export async function measureAll<K extends string>(
  operations: Record<K, Operation>,
  options: MeasureOptions = {},
): Promise<Record<K, Measurement>> {
  const samples = options.samples ?? 7;
  const sampleMs = options.sampleMs ?? 150;
  const warmupMs = options.warmupMs ?? 250;
  const maxWarmupCalls = options.maxWarmupCalls ?? 100_000;
  const names = Object.keys(operations) as K[];
  const timers = new Map<K, { timer: Timer; perSample: number; samplesUs: number[] }>();
  for (const name of names) {
    const timer = new Timer(operations[name]);
    const perCall = await timer.warmUp(warmupMs, maxWarmupCalls);
    const perSample = Math.max(1, Math.round(sampleMs / perCall));
    timers.set(name, { timer, perSample, samplesUs: [] });
  }
  for (let s = 0; s < samples; s++) {
    for (const name of names) {
      const entry = timers.get(name)!;
      collectGarbage?.();
      const ms = await entry.timer.time(entry.perSample);
      entry.samplesUs.push((ms * 1000) / entry.perSample);
    }
  }
  const results = {} as Record<K, Measurement>;
  for (const name of names) {
    const { perSample, samplesUs } = timers.get(name)!;
    const medianUs = median(samplesUs);
    const spread = (quantile(samplesUs, 0.75) - quantile(samplesUs, 0.25)) / medianUs;
    results[name] = { medianUs, samplesUs, perSample, spread };
  }
  return results;
}

/** A time in µs with precision that suits its size: `0.84`, `12.3`, `4,512`. */
export function formatMicros(us: number): string {
  if (!Number.isFinite(us)) return '—';
  if (us < 10) return us.toFixed(2);
  if (us < 100) return us.toFixed(1);
  return Math.round(us).toLocaleString('en-US');
}

/**
 * Whether `a` being `ratio` times `b` may be noise: the difference is within the larger spread of
 * the two measurements' samples.
 */
export function withinNoise(a: Measurement, b: Measurement): boolean {
  return Math.abs(a.medianUs / b.medianUs - 1) <= Math.max(a.spread, b.spread);
}

/** A ratio such as `1.12x`. */
export function formatRatio(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '—';
}

/**
 * A plain-text table: the first column left-aligned, the others right-aligned.
 *
 * @example
 *   console.log(formatTable(['case', 'raw µs'], [['point select', '1.20']]));
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}
