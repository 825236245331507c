/**
 * Helpers for the type-level tests in this folder. These files are only type-checked
 * (`tsc --noEmit` includes test/), never run: a wrong inference is a compile error.
 */

/**
 * True only when A and B are the same type. The generic-function form compares with the
 * compiler's identity relation, so `any`, `unknown`, optional vs `| undefined` and `readonly`
 * all count as differences (plain mutual assignability would let them through).
 */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** What a query resolves to when awaited: `ResultOf<typeof q>`. */
export type ResultOf<Q> = Q extends PromiseLike<infer T> ? T : never;

/** The element type of an array. */
export type RowOf<R> = R extends readonly (infer Row)[] ? Row : never;

/**
 * Compiles only when `Actual` is exactly `Expected`; on a mismatch the error shows both.
 *
 * @example
 *   expectType<typeof todos.$inferSelect>().toBe<{ id: string; title: string }>();
 */
export function expectType<Actual>(): {
  toBe<Expected>(
    ...mismatch: Equal<Actual, Expected> extends true ? [] : [{ expected: Expected; actual: Actual }]
  ): void;
} {
  return { toBe: () => {} };
}
