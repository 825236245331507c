import type BetterSqlite3 from 'better-sqlite3';
import type { Driver, DriverQuery, DriverResult, DriverSession } from '../../src/database/driver.js';
import { SingleConnection } from '../../src/database/single-connection.js';
import { type SqliteOptions, sqlite } from '../../src/drivers/better-sqlite3/index.js';

/**
 * A real better-sqlite3 database that answers like SQLite WASM in its Web Worker: every statement
 * runs on a later tick (a macrotask, in the order the statements were sent) and its answer is a
 * promise, with the query and the rows copied as `postMessage` copies them (`structuredClone`: a
 * Buffer arrives as a plain Uint8Array). It offers no `acquireNow()`, so the sync client takes its
 * promise path, as it does in a browser. Errors are better-sqlite3's own `SqliteError`s, rejected.
 *
 * For Node tests of the asynchronous client path (the e2e sync tests run their clients on both).
 *
 * @example
 *   const db = await openDatabase(e2eSchema, asyncSqlite());
 *   const file = await openDatabase(e2eSchema, asyncSqlite({ path: 'client.db' }));
 */
export function asyncSqlite(
  options: SqliteOptions = {},
): Driver & { readonly handle: BetterSqlite3.Database } {
  return new AsyncSqliteDriver(options);
}

class AsyncSqliteDriver implements Driver {
  readonly name = 'better-sqlite3 (async)';
  private readonly inner: ReturnType<typeof sqlite>;
  // Statements of a transaction and plain queries take turns here, as in the WASM driver; the inner
  // driver's own connection is never held, so its query() runs the statement at once.
  private readonly connection = new SingleConnection((q) => this.send(q));

  constructor(options: SqliteOptions) {
    this.inner = sqlite(options);
  }

  get dialect() {
    return this.inner.dialect;
  }

  /** The better-sqlite3 handle (for a test that inspects the file; it answers synchronously). */
  get handle(): BetterSqlite3.Database {
    return this.inner.handle;
  }

  open(): Promise<void> {
    return later(() => this.inner.open());
  }

  query(query: DriverQuery): Promise<DriverResult> {
    return this.connection.query(query) as Promise<DriverResult>;
  }

  acquire(): Promise<DriverSession> {
    return this.connection.acquire();
  }

  /** Closes after every statement sent before it ran, as the worker's close request does. */
  close(): Promise<void> {
    return later(() => this.inner.close());
  }

  private send(query: DriverQuery): Promise<DriverResult> {
    const copy: DriverQuery = structuredClone({
      sql: query.sql,
      params: [...query.params],
      arrayMode: query.arrayMode,
      needsBigInt: query.needsBigInt,
    });
    return later(() => structuredClone(this.inner.query(copy) as DriverResult));
  }
}

/** Runs `work` on a later macrotask (after the ones queued before it), settling with its outcome. */
function later<T>(work: () => T | Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(work());
      } catch (error) {
        reject(error);
      }
    });
  });
}
