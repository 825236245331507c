import type { Dialect } from '../dialect/dialect.js';
import { TransactionClosedError } from '../errors.js';
import type { DriverQuery, DriverResult, DriverSession } from './driver.js';
import { QueryScope } from './query-scope.js';

type MaybePromise<T> = T | Promise<T>;

/**
 * A transaction: the same query methods as the database, on the one connection the transaction
 * holds. `transaction()` on it opens a savepoint. Tables it writes are reported when the outermost
 * transaction commits, and never when it rolls back.
 *
 * @example
 *   await db.transaction(async (tx) => {
 *     const [list] = await tx.insert(lists).values({ name: 'A', ownerId }).returning();
 *     await tx.insert(todos).values({ listId: list.id, title: 'first' });
 *   });
 */
export class Transaction extends QueryScope {
  readonly dialect: Dialect;
  /** Tables written in this transaction (and in committed savepoints inside it). */
  readonly written = new Set<string>();
  private state: 'open' | 'committed' | 'rolled back' = 'open';
  private nested: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly session: DriverSession,
    dialect: Dialect,
    private readonly depth: number,
  ) {
    super();
    this.dialect = dialect;
  }

  protected runOnDriver(query: DriverQuery): MaybePromise<DriverResult> {
    if (this.state !== 'open') {
      throw new TransactionClosedError(
        `this transaction has already ${this.state}; run queries inside its callback, or on the database`,
      );
    }
    return this.session.query(query);
  }

  wrote(table: string): void {
    this.written.add(table);
  }

  /** @internal */
  end(state: 'committed' | 'rolled back'): void {
    this.state = state;
  }

  /** A nested transaction as a SAVEPOINT: throwing rolls back only this part. */
  transaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<R> {
    // Savepoints on one connection must not interleave, so nested transactions run one at a time.
    const run = this.nested.then(() => this.runSavepoint(fn));
    this.nested = run.catch(() => undefined);
    return run;
  }

  private async runSavepoint<R>(fn: (tx: Transaction) => Promise<R>): Promise<R> {
    const name = `syncline_sp_${this.depth + 1}`;
    const raw = (sql: string) => this.run({ sql, params: [], arrayMode: false, needsBigInt: false });
    await raw(`SAVEPOINT ${name}`);
    const inner = new Transaction(this.session, this.dialect, this.depth + 1);
    try {
      const result = await fn(inner);
      await raw(`RELEASE SAVEPOINT ${name}`);
      inner.end('committed');
      for (const t of inner.written) this.written.add(t);
      return result;
    } catch (error) {
      inner.end('rolled back');
      await raw(`ROLLBACK TO SAVEPOINT ${name}`);
      await raw(`RELEASE SAVEPOINT ${name}`);
      throw error;
    }
  }
}
