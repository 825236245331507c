import type { Database } from '../../database/database.js';
import type { DriverResult } from '../../database/driver.js';
import { is } from '../../entity.js';
import { ConstraintError } from '../../errors.js';

type MaybePromise<T> = T | Promise<T>;

/**
 * Runs one statement inside a client transaction. It returns the driver's result directly when the
 * driver is synchronous (better-sqlite3), so loops over thousands of rows take no promise per row;
 * callers await only when they get a promise (an asynchronous driver such as SQLite WASM).
 *
 * @example
 *   const result = run('SELECT value FROM _syncline_state WHERE key = ?', ['cursor']);
 *   const rows = (result instanceof Promise ? await result : result).rows;
 */
export type Run = (
  sql: string,
  params?: readonly unknown[],
  options?: { arrayMode?: boolean; bigInts?: boolean },
) => MaybePromise<DriverResult>;

/**
 * What a remote transaction's first statement (the one that switches capture off) also read, so
 * an apply needs no statements of its own for them: the stored cursor, and an upper bound of the
 * outbox's row count (seq span; 0 when it is empty). Nothing in a remote transaction adds outbox
 * rows (capture is off), so the bound holds to its end.
 *
 * @example
 *   await clientTransaction(db, true, (run, start) => start!.outboxRows === 0 ? fast(run) : slow(run));
 */
export interface RemoteStart {
  readonly cursor: string | undefined;
  readonly outboxRows: number;
}

/**
 * Capture off, reading the cursor and the outbox span on the way. Two subqueries for the span:
 * SQLite reads min() or max() from the rowid alone only when it is the whole query.
 */
const CAPTURE_OFF_SQL = `UPDATE _syncline_capture SET enabled = 0 RETURNING
  (SELECT value FROM _syncline_state WHERE key = 'cursor'),
  (SELECT max(seq) FROM _syncline_outbox) - (SELECT min(seq) FROM _syncline_outbox) + 1`;

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
 * switched off first (`_syncline_capture`; `fn` gets what that statement read, `RemoteStart`) and on
 * again before the commit, so nothing echoes into
 * the outbox, and foreign keys are not enforced while it runs (see `ClientTransactionOptions`),
 * because rows arrive in server order filtered by shapes, which may hold a child without its
 * parent (PowerSync does the same). `PRAGMA foreign_keys` cannot change inside a transaction, so
 * it is switched around it, on the connection this transaction holds, so no other statement runs
 * meanwhile.
 *
 * @example
 *   await clientTransaction(db, true, async (run) => {
 *     await run('DELETE FROM "todos" WHERE "id" = ?', [id]);
 *   });
 */
export async function clientTransaction<R>(
  db: Database,
  remote: boolean,
  fn: (run: Run, start: RemoteStart | undefined) => MaybePromise<R>,
  options: ClientTransactionOptions = {},
): Promise<R> {
  const session = await db.driver.acquire();
  const dialect = db.dialect;
  const run: Run = (sql, params = [], options) => {
    const query = {
      sql,
      params,
      arrayMode: options?.arrayMode ?? false,
      needsBigInt: options?.bigInts ?? false,
    };
    try {
      const result = session.query(query);
      return result instanceof Promise
        ? result.catch((error) => {
            throw dialect.translateError(error);
          })
        : result;
    } catch (error) {
      throw dialect.translateError(error);
    }
  };
  let broken = false;
  let switchedOff = false;
  const attempt = async (): Promise<R> => {
    // Awaited only when the driver returns promises: a synchronous driver runs the whole
    // transaction without a microtask (the stamping pass runs one after every local commit).
    const begun = run(dialect.beginTransaction);
    if (begun instanceof Promise) await begun;
    try {
      let start: RemoteStart | undefined;
      if (remote) {
        const off = run(CAPTURE_OFF_SQL, [], { arrayMode: true });
        const [row] = (off instanceof Promise ? await off : off).rows as [unknown[]];
        start = { cursor: (row[0] as string | null) ?? undefined, outboxRows: Number(row[1] ?? 0) };
      }
      const done = fn(run, start);
      const result = done instanceof Promise ? await done : done;
      if (remote) await run('UPDATE _syncline_capture SET enabled = 1');
      const committed = run('COMMIT');
      if (committed instanceof Promise) await committed;
      return result;
    } catch (error) {
      try {
        await run('ROLLBACK');
      } catch {
        broken = true;
      }
      throw error;
    }
  };
  try {
    if (!remote) return await attempt();
    if (options.foreignKeys === 'try-on') {
      // No need to ask first: only enforcement that is on can break a foreign key.
      try {
        return await attempt();
      } catch (error) {
        if (broken || !(is(error, ConstraintError) && error.kind === 'foreignKey')) throw error;
      }
    }
    const { rows } = await run('PRAGMA foreign_keys', [], { arrayMode: true });
    if (Number((rows[0] as unknown[] | undefined)?.[0]) === 1) {
      await run('PRAGMA foreign_keys = OFF');
      switchedOff = true;
    }
    return await attempt();
  } finally {
    if (switchedOff) {
      try {
        await run('PRAGMA foreign_keys = ON');
      } catch {
        broken = true;
      }
    }
    session.release(broken);
  }
}
