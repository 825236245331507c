/**
 * The table printed at the end of a soak: seeds run and failed, operations, faults by kind, time
 * to converge (p50 and max), batches applied and rejected, violations by kind.
 */
import { FAULT_KINDS } from './plan.js';
import type { SeedResult } from './run-seed.js';
import { VIOLATION_KINDS } from './violations.js';

function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function ms(value: number | undefined): string {
  return value === undefined ? '-' : `${value} ms`;
}

/**
 * The summary of `results` as lines of a two-column table.
 *
 * @example
 *   console.log(summaryTable(results).join('\n'));
 */
export function summaryTable(results: readonly SeedResult[], label = ''): string[] {
  const rows: [string, string][] = [];
  const failed = results.filter((r) => r.violations.length > 0);
  rows.push([
    'seeds',
    `${results.length} run, ${failed.length} failed${failed.length ? ` (${failed.map((r) => r.seed).join(', ')})` : ''}`,
  ]);
  rows.push(['operations', String(results.reduce((n, r) => n + r.ops, 0))]);
  const writes = (key: keyof SeedResult['writes']) => results.reduce((n, r) => n + r.writes[key], 0);
  rows.push([
    'writes',
    `${writes('ok')} committed, ${writes('failed')} failed locally, ${writes('skipped')} skipped, ${writes('indeterminate')} killed mid-write`,
  ]);
  const batches = results.reduce(
    (acc, r) => ({
      applied: acc.applied + r.batches.applied,
      rejected: acc.rejected + r.batches.rejected,
      unanswered: acc.unanswered + r.batches.unanswered,
    }),
    { applied: 0, rejected: 0, unanswered: 0 },
  );
  rows.push([
    'batches',
    `${batches.applied} applied, ${batches.rejected} rejected, ${batches.unanswered} unanswered`,
  ]);
  for (const kind of FAULT_KINDS) {
    const count = results.reduce((n, r) => n + (r.faults[kind] ?? 0), 0);
    const skipped = results.find((r) => r.skippedFaults[kind])?.skippedFaults[kind];
    rows.push([`fault ${kind}`, `${count}${skipped && count === 0 ? ` (skipped: ${skipped})` : ''}`]);
  }
  const times = results
    .map((r) => r.convergeMs)
    .filter((t): t is number => t !== undefined)
    .sort((a, b) => a - b);
  rows.push(['converge p50', ms(percentile(times, 0.5))]);
  rows.push(['converge max', ms(times.at(-1))]);
  rows.push(['never converged', String(results.filter((r) => r.convergeMs === undefined).length)]);
  for (const kind of VIOLATION_KINDS) {
    const count = results.reduce((n, r) => n + r.violations.filter((v) => v.kind === kind).length, 0);
    rows.push([`violations ${kind}`, String(count)]);
  }
  const wall = results.reduce((n, r) => n + r.durationMs, 0);
  rows.push(['run time (sum)', `${(wall / 1000).toFixed(1)} s`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const title = `soak summary${label ? ` (${label})` : ''}`;
  return [title, '-'.repeat(title.length), ...rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`)];
}
