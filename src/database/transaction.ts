import type { Dialect } from '../dialect/dialect.js';
import { DatabaseError, type SynclineError, TransactionClosedError } from '../errors.js';
import { ChangeSet } from '../live/change-set.js';
import type { RowChange } from '../live/row-changes.js';
import type { DriverQuery, DriverResult, DriverSession, MaybePromise } from './driver.js';
import { QueryScope } from './query-scope.js';

/** Whoever decides if writes should report their rows (the Database, for its live queries). */
export interface RowChangeHost {
  wantsRowChanges(table: string): boolean;
}

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
  /** Tables (and rows, where known) written in this transaction and its committed savepoints. */
  readonly written = new ChangeSet();
  private state: 'open' | 'committed' | 'rolled back' = 'open';
  private nested: Promise<unknown> = Promise.resolve();
  /** The first statement that failed in this transaction (outside savepoints that rolled back). */
  private failure: SynclineError | undefined;

  constructor(
    private readonly session: DriverSession,
    dialect: Dialect,
    private readonly depth: number,
    private readonly host?: RowChangeHost,
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

  override run(query: DriverQuery): MaybePromise<DriverResult> {
    const record = (error: unknown) => {
      if (!(error instanceof TransactionClosedError)) this.failure ??= error as SynclineError;
      throw error;
    };
    try {
      const result = super.run(query);
      return result instanceof Promise ? result.catch(record) : result;
    } catch (error) {
      return record(error);
    }
  }

  wrote(table: string, rows?: readonly RowChange[]): void {
    this.written.add(table, rows);
  }

  wantsRowChanges(table: string): boolean {
    return this.host?.wantsRowChanges(table) ?? false;
  }

  /**
   * Refuses to commit after a failed statement whose error the callback caught. PostgreSQL would
   * silently turn that COMMIT into a ROLLBACK, and SQLite would commit the rest; neither is what the
   * code meant, so both dialects roll back and say so. A nested `tx.transaction()` is the way to
   * let a statement fail and go on.
   * @internal
   */
  assertNoFailure(): void {
    const failure = this.failure;
    if (!failure) return;
    throw new DatabaseError(
      `the transaction was rolled back because a statement in it failed (${failure.message}); ` +
        'to let a statement fail and go on, run it in a nested tx.transaction(), which rolls back only that part',
      (failure as { code?: string }).code,
      { cause: failure },
    );
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
    const inner = new Transaction(this.session, this.dialect, this.depth + 1, this.host);
    try {
      const result = await fn(inner);
      inner.assertNoFailure();
      await raw(`RELEASE SAVEPOINT ${name}`);
      inner.end('committed');
      this.written.merge(inner.written);
      return result;
    } catch (error) {
      inner.end('rolled back');
      await raw(`ROLLBACK TO SAVEPOINT ${name}`);
      await raw(`RELEASE SAVEPOINT ${name}`);
      throw error;
    }
  }
}

/**
 * Runs `fn` in a transaction on a connection already held: BEGIN, then COMMIT when it resolves,
 * ROLLBACK when it throws (the error is rethrown). `onBroken` hears when even ROLLBACK failed, so
 * the caller can drop the connection. Used by `Database.transaction` and the migration runner.
 */
export async function runTransaction<R>(
  session: DriverSession,
  dialect: Dialect,
  fn: (tx: Transaction) => Promise<R>,
  onBroken: () => void,
  host?: RowChangeHost,
): Promise<{ result: R; written: ChangeSet }> {
  const tx = new Transaction(session, dialect, 0, host);
  const raw = async (sql: string) => {
    try {
      await session.query({ sql, params: [], arrayMode: false, needsBigInt: false });
    } catch (error) {
      throw dialect.translateError(error);
    }
  };
  const rollback = async () => {
    tx.end('rolled back');
    try {
      await raw('ROLLBACK');
    } catch {
      onBroken();
    }
  };
  await raw(dialect.beginTransaction);
  let result: R;
  try {
    result = await fn(tx);
    tx.assertNoFailure();
  } catch (error) {
    await rollback();
    throw error;
  }
  try {
    await raw('COMMIT');
  } catch (error) {
    await rollback();
    throw error;
  }
  tx.end('committed');
  return { result, written: tx.written };
}
