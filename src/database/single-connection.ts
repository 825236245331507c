import type { DriverQuery, DriverResult, DriverSession } from './driver.js';

type MaybePromise<T> = T | Promise<T>;

/**
 * Shares one connection (a SQLite handle, a PGlite instance) between plain queries and
 * transactions. While a transaction holds it, other queries and transactions wait their turn, so
 * nothing runs inside a transaction that is not part of it. When it is free, queries run at once
 * with no extra promise, which keeps synchronous drivers synchronous.
 */
export class SingleConnection {
  private held = false;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly run: (query: DriverQuery) => MaybePromise<DriverResult>) {}

  query(query: DriverQuery): MaybePromise<DriverResult> {
    if (!this.held) return this.run(query);
    return this.acquire().then((session) => {
      try {
        const result = this.run(query);
        if (result instanceof Promise) {
          return result.finally(() => session.release());
        }
        session.release();
        return result;
      } catch (error) {
        session.release();
        throw error;
      }
    });
  }

  acquire(): Promise<DriverSession> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve(this.session());
    }
    return new Promise((resolve) => this.waiting.push(() => resolve(this.session())));
  }

  private session(): DriverSession {
    let released = false;
    return {
      query: (query) => this.run(query),
      release: () => {
        if (released) return;
        released = true;
        const next = this.waiting.shift();
        if (next) next();
        else this.held = false;
      },
    };
  }
}
