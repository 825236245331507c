import type { Database } from '../../database/database.js';
import type { DriverResult } from '../../database/driver.js';

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
 * Runs `fn` in one SQLite transaction on a connection of its own, straight on the Database's
 * driver. With `remote` set it is a transaction that applies what came from the server: capture is
 * switched off first (`_syncline_capture`) and on again before the commit, so nothing echoes into
 * the outbox, and foreign keys are not enforced while it runs, because rows arrive in server
 * order filtered by shapes, which may hold a child without its parent (PowerSync does the same).
 * `PRAGMA foreign_keys` cannot change inside a transaction, so it is switched around it, on the
 * connection this transaction holds, so no other statement runs meanwhile.
 *
 * @example
 *   await clientTransaction(db, true, async (run) => {
 *     await run('DELETE FROM "todos" WHERE "id" = ?', [id]);
 *   });
 */
export async function clientTransaction<R>(
  db: Database,
  remote: boolean,
  fn: (run: Run) => MaybePromise<R>,
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
  let foreignKeysWereOn = false;
  try {
    if (remote) {
      const { rows } = await run('PRAGMA foreign_keys', [], { arrayMode: true });
      foreignKeysWereOn = Number((rows[0] as unknown[] | undefined)?.[0]) === 1;
      if (foreignKeysWereOn) await run('PRAGMA foreign_keys = OFF');
    }
    await run(dialect.beginTransaction);
    try {
      if (remote) await run('UPDATE _syncline_capture SET enabled = 0');
      const result = await fn(run);
      if (remote) await run('UPDATE _syncline_capture SET enabled = 1');
      await run('COMMIT');
      return result;
    } catch (error) {
      try {
        await run('ROLLBACK');
      } catch {
        broken = true;
      }
      throw error;
    }
  } finally {
    if (foreignKeysWereOn) {
      try {
        await run('PRAGMA foreign_keys = ON');
      } catch {
        broken = true;
      }
    }
    session.release(broken);
  }
}
