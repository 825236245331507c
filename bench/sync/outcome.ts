/**
 * One line of the summary of `npm run bench:sync`: what was measured, the result, the baseline it
 * is compared with (measured in the same run) and the ratio, the target and whether it was met.
 * Each measurement file returns its outcomes; run.ts prints them together.
 */
import { formatTable } from '../support/measure.js';

/**
 * An outcome of one measurement. `met` is undefined for a line without a target (reported for
 * context, such as a memory figure).
 *
 * @example
 *   const line: Outcome = { measurement: 'initial sync, 100,000 rows', result: '0.84 s (119,000 rows/s)',
 *     baseline: 'raw insert 0.08 s', ratio: '10.5x', target: '>= 100,000 rows/s', met: true };
 */
export interface Outcome {
  readonly measurement: string;
  readonly result: string;
  readonly baseline: string;
  readonly ratio: string;
  readonly target: string;
  readonly met: boolean | undefined;
}

/**
 * A duration in ms for people: `0.42 ms`, `12.3 ms`, `845 ms`, `2.31 s`.
 *
 * @example
 *   formatMs(2310); // '2.31 s'
 */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * A rate per second, rounded to three significant digits: `118,000/s`, `4,520/s`, `87.3/s`.
 *
 * @example
 *   formatRate(100_000, 843); // '119,000/s'
 */
export function formatRate(count: number, ms: number): string {
  const perSecond = (count * 1000) / ms;
  if (!Number.isFinite(perSecond)) return '—';
  if (perSecond < 100) return `${perSecond.toPrecision(3)}/s`;
  const digits = Math.floor(Math.log10(perSecond)) + 1;
  const step = 10 ** Math.max(0, digits - 3);
  return `${(Math.round(perSecond / step) * step).toLocaleString('en-US')}/s`;
}

/**
 * A count with thousands separators.
 *
 * @example
 *   formatCount(100000); // '100,000'
 */
export const formatCount = (n: number): string => n.toLocaleString('en-US');

/**
 * The summary table of all outcomes, with `met` / `MISSED` / `—` in the last column.
 *
 * @example
 *   console.log(formatOutcomes(outcomes));
 */
export function formatOutcomes(outcomes: readonly Outcome[]): string {
  return formatTable(
    ['measurement', 'result', 'baseline (same run)', 'ratio', 'target', 'target met'],
    outcomes.map((o) => [
      o.measurement,
      o.result,
      o.baseline,
      o.ratio,
      o.target,
      o.met === undefined ? '—' : o.met ? 'met' : 'MISSED',
    ]),
  );
}
