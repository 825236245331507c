import type { MaybePromise } from '../../database/driver.js';

/**
 * Work written once for synchronous and asynchronous drivers: a generator that yields what each
 * statement returned (`const result = yield run(sql)`). `runSteps` hands a plain value straight
 * back and awaits only a promise, so with a synchronous driver (better-sqlite3) the whole run takes
 * no microtask and returns its result rather than a promise; with an asynchronous one (SQLite
 * WASM) it becomes a promise at the first promise yielded.
 *
 * @example
 *   function* count(run: Run): Steps<number> {
 *     const { rows } = yield run('SELECT count(*) AS n FROM todos');
 *     return rows[0].n;
 *   }
 *   const n = await runSteps(count(run)); // no microtask before the await on better-sqlite3
 */
// What a yield gives back is whatever was yielded, awaited: any, for the caller to name.
export type Steps<R> = Generator<unknown, R, any>;

/**
 * Runs `steps` to its end: synchronously while it yields plain values, then asynchronously from
 * the first promise on (a rejection is thrown into the generator, where its try/catch sees it).
 * An error thrown before that is thrown synchronously.
 *
 * @example
 *   const result = runSteps(applySteps(run));
 *   if (result instanceof Promise) await result;
 */
export function runSteps<R>(steps: Steps<R>): MaybePromise<R> {
  let next = steps.next();
  while (!next.done) {
    if (next.value instanceof Promise) return finish(steps, next.value);
    next = steps.next(next.value);
  }
  return next.value;
}

async function finish<R>(steps: Steps<R>, pending: Promise<unknown>): Promise<R> {
  for (;;) {
    let settled: { value: unknown } | { error: unknown };
    try {
      settled = { value: await pending };
    } catch (error) {
      settled = { error };
    }
    let next = 'error' in settled ? steps.throw(settled.error) : steps.next(settled.value);
    while (!next.done && !(next.value instanceof Promise)) next = steps.next(next.value);
    if (next.done) return next.value;
    pending = next.value as Promise<unknown>;
  }
}

/** True for a generator object (what a `function*` returns), as opposed to a value or a promise. */
export function isSteps<R>(value: unknown): value is Steps<R> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Steps<R>).next === 'function' &&
    typeof (value as Steps<R>).throw === 'function'
  );
}
