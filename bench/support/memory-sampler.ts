/**
 * Peak memory during a piece of work, measured from inside the process: a baseline taken after a
 * full garbage collection (when the process runs with --expose-gc), then `process.memoryUsage()`
 * sampled on a timer until `stop()`. Samples are taken between event-loop turns, so a peak inside
 * one long synchronous step is seen only at its end; for work made of many short steps (a sync
 * applying chunks) that is close enough.
 */

/**
 * Heap and resident set size, in bytes.
 *
 * @example
 *   const { heapUsed, rss }: MemoryPoint = await settledMemory();
 */
export interface MemoryPoint {
  readonly heapUsed: number;
  readonly rss: number;
}

/**
 * What `MemorySampler.stop()` reports: the baseline, the highest sample, the growth of each from
 * the baseline to its peak, and how many samples were taken. With `gcEveryMs`, also `retained`:
 * the highest heap right after a forced collection, above the baseline (live data, not garbage
 * waiting for the next collection); undefined without it.
 *
 * @example
 *   const { growth } = sampler.stop();
 *   console.log(formatBytes(growth.heapUsed));
 */
export interface MemoryPeak {
  readonly baseline: MemoryPoint;
  readonly peak: MemoryPoint;
  readonly growth: MemoryPoint;
  readonly retained: number | undefined;
  readonly samples: number;
}

/**
 * How `MemorySampler.start` samples: every `intervalMs` (default 10), and with `gcEveryMs` a full
 * collection that often, to tell the live heap from garbage (it costs the work some time).
 *
 * @example
 *   MemorySampler.start({ gcEveryMs: 1000 });
 */
export interface SamplerOptions {
  readonly intervalMs?: number;
  readonly gcEveryMs?: number;
}

const collectGarbage = (globalThis as { gc?: () => void }).gc;

/**
 * Runs a full garbage collection twice when the process has `gc` exposed (once leaves garbage
 * that finalizers released); a no-op otherwise.
 *
 * @example
 *   fullGc();
 *   const before = process.memoryUsage();
 */
export function fullGc(): void {
  collectGarbage?.();
  collectGarbage?.();
}

/**
 * True when the process was started with --expose-gc, so baselines are taken after a collection.
 *
 * @example
 *   if (!gcExposed) console.log('run with --expose-gc for memory figures');
 */
export const gcExposed = collectGarbage !== undefined;

/**
 * The process's heap and RSS once it has settled: collected, then given a moment to hand freed
 * pages back to the OS (which V8 and malloc do lazily), then collected again.
 *
 * @example
 *   const before = await settledMemory();
 */
export async function settledMemory(pauseMs = 300): Promise<MemoryPoint> {
  fullGc();
  await new Promise((resolve) => setTimeout(resolve, pauseMs));
  fullGc();
  await new Promise((resolve) => setTimeout(resolve, pauseMs));
  return now();
}

function now(): MemoryPoint {
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}

/**
 * Samples the process's memory every `intervalMs` (default 10) from `start()` to `stop()` and
 * reports the peak heap and RSS above a baseline taken after a full collection.
 *
 * @example
 *   const sampler = MemorySampler.start({ gcEveryMs: 1000 });
 *   await doTheWork();
 *   const { growth } = sampler.stop();
 */
export class MemorySampler {
  private peakHeap: number;
  private peakRss: number;
  private peakRetained: number | undefined;
  private count = 0;
  private readonly timers: ReturnType<typeof setInterval>[] = [];

  private constructor(
    private readonly baseline: MemoryPoint,
    options: SamplerOptions,
  ) {
    this.peakHeap = baseline.heapUsed;
    this.peakRss = baseline.rss;
    this.timers.push(setInterval(() => this.sample(), options.intervalMs ?? 10));
    if (options.gcEveryMs !== undefined && collectGarbage) {
      this.peakRetained = baseline.heapUsed;
      this.timers.push(setInterval(() => this.retain(), options.gcEveryMs));
    }
  }

  /** Collects garbage, takes the baseline and starts sampling. */
  static start(options: SamplerOptions = {}): MemorySampler {
    fullGc();
    return new MemorySampler(now(), options);
  }

  private retain(): void {
    this.sample();
    collectGarbage?.();
    const { heapUsed } = process.memoryUsage();
    if (heapUsed > this.peakRetained!) this.peakRetained = heapUsed;
  }

  /** Takes one sample now (call it at points where memory is likely highest). */
  sample(): void {
    const point = now();
    this.count++;
    if (point.heapUsed > this.peakHeap) this.peakHeap = point.heapUsed;
    if (point.rss > this.peakRss) this.peakRss = point.rss;
  }

  /** Takes a last sample, stops the timer and reports. */
  stop(): MemoryPeak {
    for (const timer of this.timers) clearInterval(timer);
    if (this.peakRetained === undefined) this.sample();
    else this.retain();
    const peak = { heapUsed: this.peakHeap, rss: this.peakRss };
    return {
      baseline: this.baseline,
      peak,
      growth: { heapUsed: peak.heapUsed - this.baseline.heapUsed, rss: peak.rss - this.baseline.rss },
      retained: this.peakRetained === undefined ? undefined : this.peakRetained - this.baseline.heapUsed,
      samples: this.count,
    };
  }
}

/**
 * A byte count for people: `812 KB`, `14.2 MB`, `1.31 GB`; negative growth keeps its sign.
 *
 * @example
 *   formatBytes(14_900_000); // '14.2 MB'
 */
export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  for (const unit of ['B', 'KB', 'MB', 'GB']) {
    if (value < 1024 || unit === 'GB') {
      return `${sign}${value < 10 && unit !== 'B' ? value.toFixed(2) : value < 100 && unit !== 'B' ? value.toFixed(1) : Math.round(value)} ${unit}`;
    }
    value /= 1024;
  }
  return `${bytes} B`;
}
