import type { DriverSession } from '../database/driver.js';
import type { Transaction } from '../database/transaction.js';
import type { Dialect } from '../dialect/dialect.js';

/** Runs one statement of SQL text and gives its rows as objects: what migration code speaks. */
export type SqlRunner = (text: string, params?: readonly unknown[]) => Promise<Record<string, unknown>[]>;

/** A runner on a held connection, outside any transaction (locks, pragmas). */
export function sessionRunner(session: DriverSession, dialect: Dialect): SqlRunner {
  return async (text, params = []) => {
    try {
      const result = await session.query({ sql: text, params, arrayMode: false, needsBigInt: false });
      return result.rows as Record<string, unknown>[];
    } catch (error) {
      throw dialect.translateError(error);
    }
  };
}

/** A runner inside a transaction. */
export function transactionRunner(tx: Transaction): SqlRunner {
  return async (text, params = []) => {
    const result = await tx.run({ sql: text, params, arrayMode: false, needsBigInt: false });
    return result.rows as Record<string, unknown>[];
  };
}
