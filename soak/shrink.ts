/**
 * Shrinking a failing run: the seed's plan is replayed with fewer steps while it still fails
 * (with a violation of a kind the original run had), to find a short history that shows the bug.
 * First halves (keep the first half, then the second), then chunks of a quarter, an eighth, ...
 * are left out; every attempt is a full run, and their number is bounded. Runs are not perfectly
 * repeatable (faults land at other moments), so a shrunk plan is a lead, not a proof.
 */
import type { SeedResult } from './run-seed.js';

/**
 * How to run a plan subset: the ids of the steps to keep (the first, which seeds the owners, is
 * always kept).
 *
 * @example
 *   const attempt: RunSubset = (ids) => runSeed(options, seed, new Set(ids));
 */
export type RunSubset = (ids: readonly number[]) => Promise<SeedResult>;

/**
 * Shrinks `failed` with at most `maxRuns` re-runs; returns the smallest failing result found
 * (`failed` itself when no smaller plan failed). `onAttempt` hears of each try.
 *
 * @example
 *   const smallest = await shrink(result, (ids) => runSeed(options, seed, new Set(ids)), 6);
 */
export async function shrink(
  failed: SeedResult,
  run: RunSubset,
  maxRuns: number,
  onAttempt?: (steps: number, stillFails: boolean) => void,
): Promise<SeedResult> {
  const kinds = new Set<string>(failed.violations.map((v) => v.kind).filter((k) => k !== 'harness'));
  if (kinds.size === 0) return failed;
  let best = failed;
  let runs = 0;
  const tryIds = async (ids: readonly number[]): Promise<boolean> => {
    runs++;
    const result = await run(ids);
    const fails = result.violations.some((v) => kinds.has(v.kind));
    onAttempt?.(ids.length, fails);
    if (fails && ids.length < best.stepIds.length) best = result;
    return fails;
  };
  let chunks = 2;
  while (runs < maxRuns) {
    const [first, ...rest] = best.stepIds;
    if (rest.length < 2) break;
    const size = Math.ceil(rest.length / chunks);
    let removed = false;
    for (let start = 0; start < rest.length && runs < maxRuns; start += size) {
      const kept = [first, ...rest.slice(0, start), ...rest.slice(start + size)];
      if (await tryIds(kept)) {
        removed = true;
        break;
      }
    }
    if (!removed) {
      if (size <= 1) break;
      chunks *= 2;
    }
  }
  return best;
}
