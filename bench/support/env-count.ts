/**
 * A whole number from the environment variable `name` (underscores allowed: `100_000`), or
 * `fallback` when it is unset or empty; anything else, or a number under `min`, fails with a
 * message naming the variable. How every benchmark takes its sizes.
 *
 * @example
 *   const rows = envCount('BENCH_ROWS', 10_000); // BENCH_ROWS=100_000 npm run bench:sync
 */
export function envCount(name: string, fallback: number, min = 1): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text.replaceAll('_', ''));
  if (!Number.isInteger(value) || value < min) {
    throw new Error(
      `bench: ${name} must be a whole number of ${min} or more (such as ${fallback}), got "${text}"`,
    );
  }
  return value;
}
