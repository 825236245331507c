import { entityKind } from '../entity.js';
import type { LiveSource, LiveSubscriber } from './live-source.js';

/**
 * A watched query: its current result first, then a new result after every commit that changes it.
 * Subscribe with a callback, or iterate with `for await`. Identical watched queries (same SQL and
 * parameters) on one database share a single re-run.
 *
 * @example
 *   const live = db.select().from(todos).where(eq(todos.done, false)).watch();
 *   const stop = live.subscribe((rows) => render(rows), (error) => showError(error));
 *   for await (const rows of live) render(rows);
 */
export class LiveQuery<T> implements AsyncIterable<T> {
  static readonly [entityKind]: string = 'LiveQuery';

  /**
   * @param source finds the shared source of this query; with `create` false it only looks, so
   *   reading `value` of an unsubscribed live query starts nothing.
   */
  constructor(private readonly source: (create: boolean) => LiveSource<T> | undefined) {}

  /** The latest result, once the query has run (undefined before). */
  get value(): T | undefined {
    return this.source(false)?.value;
  }

  /** How many times the query has run so far (shared with identical live queries): for diagnostics and benchmarks. */
  get runCount(): number {
    return this.source(false)?.runs ?? 0;
  }

  /**
   * Calls `onValue` with the current result, then with each changed result; `onError` hears a
   * failed run (the live query keeps going and recovers on the next change). Returns the unsubscribe.
   */
  subscribe(onValue: (value: T) => void, onError?: (error: unknown) => void): () => void {
    const subscriber: LiveSubscriber<T> = {
      next: onValue,
      error:
        onError ??
        ((error) =>
          queueMicrotask(() => {
            throw error;
          })),
    };
    return this.source(true)!.add(subscriber);
  }

  /**
   * Iterates results. A slow consumer gets the latest result, not every one in between; a failed
   * run rejects the pending `next()`. Leaving the loop unsubscribes.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    let buffered: { value: T } | undefined;
    let failure: { error: unknown } | undefined;
    let waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
    let done = false;
    const finish = (): Promise<IteratorResult<T>> => {
      done = true;
      buffered = undefined;
      failure = undefined;
      unsubscribe();
      if (waiting) waiting.resolve({ value: undefined, done: true });
      waiting = undefined;
      return Promise.resolve({ value: undefined, done: true });
    };
    const unsubscribe = this.source(true)!.add({
      next: (value) => {
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w.resolve({ value, done: false });
        } else buffered = { value };
      },
      error: (error) => {
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w.reject(error);
        } else failure = { error };
      },
      // The database closed: the loop ends, after any result it has not taken yet.
      complete: () => {
        done = true;
        if (waiting) waiting.resolve({ value: undefined, done: true });
        waiting = undefined;
      },
    });
    return {
      next: () => {
        if (failure) {
          const f = failure;
          failure = undefined;
          return Promise.reject(f.error);
        }
        if (buffered) {
          const b = buffered;
          buffered = undefined;
          return Promise.resolve({ value: b.value, done: false });
        }
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          waiting = { resolve, reject };
        });
      },
      return: finish,
    };
  }
}
