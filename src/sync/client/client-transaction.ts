import type { Database } from '../../database/database.js';
import type { DriverResult, DriverSession, MaybePromise } from '../../database/driver.js';
import type { Dialect } from '../../dialect/dialect.js';
import { is } from '../../entity.js';
import { ConstraintError } from '../../errors.js';
import { isSteps, runSteps, type Steps } from './steps.js';

/**
 * Runs one statement inside a client transaction. It returns the driver's result directly when the
 * driver is synchronous (better-sqlite3), so loops over thousands of rows take no promise per row;
 * callers await only when they get a promise (an asynchronous driver such as SQLite WASM).
 *
 * @example
 *   const result = run('SELECT value FROM _syncline_state WHERE key = ?', ['shapes_key']);
 *   const rows = (result instanceof Promise ? await result : result).rows;
 */
export type Run = (
  sql: string,
  params?: readonly unknown[],
  options?: { arrayMode?: boolean; bigInts?: boolean },
) => MaybePromise<DriverResult>;

/**
 * A remote transaction's bookends. What its first statement (the one that switches capture off)
 * also read, so an apply needs no statements of its own for them: the stored cursor, and an upper
 * bound of the outbox's row count (seq span; 0 when it is empty; nothing in a remote transaction
 * adds outbox rows, capture being off, so the bound holds to its end). And what its last statement
 * (capture on again) also writes, when `fn` sets them: the new cursor and the clock's last stamp.
 * Both live in the `_syncline_capture` row, so that a `changes` message's bookkeeping takes no
 * statement besides the two capture switches.
 *
 * @example
 *   await clientTransaction(db, true, (run, start) => {
 *     if (start!.cursor !== message.from) throw new CursorGapError('...');
 *     start!.newCursor = message.to;
 *   });
 */
export interface RemoteStart {
  readonly cursor: string | undefined;
  readonly outboxRows: number;
  /** Set by `fn`: the cursor to store when the transaction commits (kept as it is when unset). */
  newCursor?: string;
  /** Set by `fn`: the clock's last stamp to store with it (kept as it is when unset). */
  lastHlc?: string;
  /**
   * True when this run of `fn` is the second, with foreign keys off, after the first broke one
   * (`foreignKeys: 'try-on'`).
   */
  readonly retried: boolean;
}

/**
 * Capture off, reading the cursor and the outbox span on the way. Two subqueries for the span:
 * SQLite reads min() or max() from the rowid alone only when it is the whole query.
 */
const CAPTURE_OFF_SQL = `UPDATE _syncline_capture SET enabled = 0 RETURNING cursor,
  (SELECT max(seq) FROM _syncline_outbox) - (SELECT min(seq) FROM _syncline_outbox) + 1`;

/** Capture on again, with what the transaction set in its `RemoteStart`. */
const CAPTURE_ON_SQL =
  'UPDATE _syncline_capture SET enabled = 1, cursor = coalesce(?, cursor), last_hlc = coalesce(?, last_hlc)';

/**
 * How a remote transaction treats foreign keys. `'off'` (the default) switches enforcement off
 * around it. `'try-on'` first runs it with enforcement as the app has it, and only when that
 * breaks a foreign key rolls back and runs `fn` again with enforcement off: switching
 * `PRAGMA foreign_keys` makes SQLite expire every prepared statement of the connection (the app's
 * live queries included), which costs more than the rest of a small apply, while most changes
 * (rows whose parents are there) break nothing. `fn` must then be safe to run twice.
 *
 * @example
 *   await clientTransaction(db, true, apply, { foreignKeys: 'try-on' });
 */
export interface ClientTransactionOptions {
  readonly foreignKeys?: 'off' | 'try-on';
}

/**
 * Runs `fn` in one SQLite transaction on a connection of its own, straight on the Database's
 * driver. With `remote` set it is a transaction that applies what came from the server: capture is
 * switched off first (`_syncline_capture`; `fn` gets what that statement read, `RemoteStart`) and
 * on again before the commit, so nothing echoes into the outbox, and foreign keys are not enforced
 * while it runs (see `ClientTransactionOptions`), because rows arrive in server order filtered by
 * shapes, which may hold a child without its parent (PowerSync does the same). `PRAGMA
 * foreign_keys` cannot change inside a transaction, so it is switched around it, on the connection
 * this transaction holds, so no other statement runs meanwhile.
 *
 * `fn` may return a value, a promise or `Steps` (a generator, see steps.ts). On a synchronous
 * driver whose connection is free (`acquireNow`) and with `fn` not returning a promise, the whole
 * transaction runs without a microtask and its result comes back as it is, not in a promise:
 * applying a server message then costs no promise per statement (and an error is thrown, not
 * returned as a rejection: call it from an async function, or catch). Otherwise it returns a
 * promise.
 *
 * @example
 *   await clientTransaction(db, true, async (run) => {
 *     await run('DELETE FROM "todos" WHERE "id" = ?', [id]);
 *   });
 */
export function clientTransaction<R>(
  db: Database,
  remote: boolean,
  fn: (run: Run, start: RemoteStart | undefined) => MaybePromise<R> | Steps<R>,
  options: ClientTransactionOptions = {},
): MaybePromise<R> {
  const now = db.driver.acquireNow?.();
  if (now) return runSteps(new Transaction(now, db.dialect, remote, fn).steps(options));
  return db.driver
    .acquire()
    .then((session) => runSteps(new Transaction(session, db.dialect, remote, fn).steps(options)));
}

/**
 * One client transaction on the session it holds (see `clientTransaction`). A class with its steps
 * as methods rather than closures made per call: a transaction runs after every local commit and
 * for every server message.
 */
class Transaction<R> {
  /** The session's connection is in an unknown state (a ROLLBACK failed): released as broken. */
  private broken = false;
  readonly run: Run;

  constructor(
    private readonly session: DriverSession,
    private readonly dialect: Dialect,
    private readonly remote: boolean,
    private readonly fn: (run: Run, start: RemoteStart | undefined) => MaybePromise<R> | Steps<R>,
  ) {
    this.run = this.query.bind(this);
  }

  private query(
    sql: string,
    params: readonly unknown[] = [],
    options?: { arrayMode?: boolean; bigInts?: boolean },
  ): MaybePromise<DriverResult> {
    const query = {
      sql,
      params,
      arrayMode: options?.arrayMode ?? false,
      needsBigInt: options?.bigInts ?? false,
    };
    try {
      const result = this.session.query(query);
      return result instanceof Promise ? result.catch((error) => this.failed(error)) : result;
    } catch (error) {
      return this.failed(error);
    }
  }

  private failed(error: unknown): never {
    throw this.dialect.translateError(error);
  }

  *steps(options: ClientTransactionOptions): Steps<R> {
    const run = this.run;
    let switchedOff = false;
    try {
      if (!this.remote) return yield* this.attempt(false);
      if (options.foreignKeys === 'try-on') {
        // No need to ask first: only enforcement that is on can break a foreign key.
        try {
          return yield* this.attempt(false);
        } catch (error) {
          if (this.broken || !(is(error, ConstraintError) && error.kind === 'foreignKey')) throw error;
        }
      }
      const { rows } = (yield run('PRAGMA foreign_keys', [], { arrayMode: true })) as DriverResult;
      if (Number((rows[0] as unknown[] | undefined)?.[0]) === 1) {
        yield run('PRAGMA foreign_keys = OFF');
        switchedOff = true;
      }
      return yield* this.attempt(options.foreignKeys === 'try-on');
    } finally {
      if (switchedOff) {
        try {
          yield run('PRAGMA foreign_keys = ON');
        } catch {
          this.broken = true;
        }
      }
      this.session.release(this.broken);
    }
  }

  private *attempt(retried: boolean): Steps<R> {
    // Only promises are yielded: a generator that never suspends costs about what a plain call
    // does, so a synchronous driver pays nothing for the asynchronous one's sake.
    const run = this.run;
    const begun = run(this.dialect.beginTransaction);
    if (begun instanceof Promise) yield begun;
    try {
      let start: RemoteStart | undefined;
      if (this.remote) {
        let off = run(CAPTURE_OFF_SQL, [], { arrayMode: true });
        if (off instanceof Promise) off = (yield off) as DriverResult;
        const [row] = off.rows as [unknown[]];
        start = { cursor: (row[0] as string | null) ?? undefined, outboxRows: Number(row[1] ?? 0), retried };
      }
      const done = this.fn(run, start);
      const result: R = isSteps<R>(done) ? yield* done : done instanceof Promise ? yield done : done;
      if (start) {
        const on = run(CAPTURE_ON_SQL, [start.newCursor ?? null, start.lastHlc ?? null]);
        if (on instanceof Promise) yield on;
      }
      const committed = run('COMMIT');
      if (committed instanceof Promise) yield committed;
      return result;
    } catch (error) {
      try {
        yield run('ROLLBACK');
      } catch {
        this.broken = true;
      }
      throw error;
    }
  }
}
