/**
 * One seed as the CLI runs it: the run, then, when it failed, the shrink of its plan. Progress
 * goes to a callback (the CLI throttles it to a line every few seconds).
 */
import type { SoakOptions } from './options.js';
import { runSeed, type SeedResult } from './run-seed.js';
import { shrink } from './shrink.js';

/**
 * A seed's result and, for a failure, the smallest failing plan found.
 *
 * @example
 *   const { result, shrunk } = await runAndShrink(options, 7, console.log);
 */
export interface SeedOutcome {
  readonly result: SeedResult;
  readonly shrunk: SeedResult | undefined;
}

/**
 * Runs `seed`, and shrinks it when it failed and `options.shrink` is on.
 *
 * @example
 *   const outcome = await runAndShrink({ ...DEFAULT_OPTIONS, db: 'pglite' }, 3);
 */
export async function runAndShrink(
  options: SoakOptions,
  seed: number,
  progress?: (line: string) => void,
): Promise<SeedOutcome> {
  const result = await runSeed(options, seed, undefined, (line) => progress?.(`seed ${seed}: ${line}`));
  const failing = result.violations.some((v) => v.kind !== 'harness');
  if (!failing || !options.shrink || options.shrinkRuns <= 0) return { result, shrunk: undefined };
  progress?.(
    `seed ${seed}: failed with ${result.violations.length} violations; shrinking ${result.stepIds.length} steps`,
  );
  const shrunk = await shrink(
    result,
    (ids) => runSeed(options, seed, new Set(ids)),
    options.shrinkRuns,
    (steps, fails) =>
      progress?.(`seed ${seed}: shrink tried ${steps} steps: ${fails ? 'still fails' : 'passes'}`),
  );
  return { result, shrunk: shrunk === result ? undefined : shrunk };
}
