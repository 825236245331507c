import type { DriverQuery, DriverResult, DriverSession, MaybePromise } from './driver.js';

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

  /** The connection now when it is free, else undefined (see `Driver.acquireNow`). */
  acquireNow(): DriverSession | undefined {
    if (this.held) return undefined;
    this.held = true;
    return this.session();
  }

  acquire(): Promise<DriverSession> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve(this.session());
    }
    return new Promise((resolve) => this.waiting.push(() => resolve(this.session())));
  }

  private session(): DriverSession {
    return new HeldConnection(this, this.run);
  }

  /** Hands the connection to the next waiting transaction, or marks it free. */
  handOn(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.held = false;
  }
}

/** One transaction's hold on the connection; releasing it twice releases it once. */
class HeldConnection implements DriverSession {
  private released = false;

  constructor(
    private readonly connection: SingleConnection,
    private readonly run: (query: DriverQuery) => MaybePromise<DriverResult>,
  ) {}

  query(query: DriverQuery): MaybePromise<DriverResult> {
    return this.run(query);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.connection.handOn();
  }
}
