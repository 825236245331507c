import { describe, expect, it } from 'vitest';
import type { DriverResult } from '../../src/database/driver.js';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { openDatabase } from '../../src/index.js';
import { clientTransaction } from '../../src/sync/client/client-transaction.js';
import { runSteps, type Steps } from '../../src/sync/client/steps.js';
import { changesMessage, clientSchema, openReplica, raw, serverStamp, setCursor } from './client-helpers.js';

/**
 * Work written once for both kinds of driver (steps.ts): with a synchronous driver a client
 * transaction, and the apply of a server message, finish before the call returns; with promises
 * in between they finish later, with the same result and the same errors.
 */

function* adds(values: readonly unknown[]): Steps<number> {
  let sum = 0;
  for (const value of values) sum += (yield value) as number;
  return sum;
}

function* guarded(value: unknown): Steps<string> {
  try {
    yield value;
    return 'no error';
  } catch (error) {
    return `caught ${(error as Error).message}`;
  }
}

describe('runSteps', () => {
  it('returns the result itself when nothing yielded is a promise', () => {
    expect(runSteps(adds([1, 2, 3]))).toBe(6);
  });

  it('returns a promise from the first promise on, awaiting each', async () => {
    const result = runSteps(adds([1, Promise.resolve(2), 3, Promise.resolve(4)]));
    expect(result).toBeInstanceOf(Promise);
    expect(await result).toBe(10);
  });

  it('throws a rejection into the generator, where its try/catch sees it', async () => {
    expect(await runSteps(guarded(Promise.reject(new Error('late'))))).toBe('caught late');
    await expect(
      runSteps(
        (function* (): Steps<void> {
          yield Promise.resolve();
          throw new Error('after a promise');
        })(),
      ),
    ).rejects.toThrow('after a promise');
  });

  it('throws synchronously what is thrown before any promise', () => {
    expect(() =>
      runSteps(
        (function* (): Steps<void> {
          yield 'a plain value';
          throw new Error('before any promise');
        })(),
      ),
    ).toThrow('before any promise');
  });
});

describe('client transactions on better-sqlite3', () => {
  it('run without a promise when the connection is free, and wait for it when it is not', async () => {
    const db = await openDatabase(clientSchema, sqlite());
    try {
      const now = clientTransaction(db, false, (run) => (run('SELECT 1 AS one') as DriverResult).rows);
      expect(now).toEqual([{ one: 1 }]);
      const held = await db.driver.acquire();
      expect(db.driver.acquireNow?.()).toBeUndefined();
      const later = clientTransaction(db, false, (run) => (run('SELECT 2 AS two') as DriverResult).rows);
      expect(later).toBeInstanceOf(Promise);
      held.release();
      expect(await later).toEqual([{ two: 2 }]);
    } finally {
      await db.close();
    }
  });

  it('apply a changes message before the call returns, and report a failure as a rejection', async () => {
    const { db, replica } = await openReplica();
    try {
      await setCursor(db, replica, '4');
      const id = '0f8fad5b-d9cb-469f-a165-70867728950e';
      const applied = replica.applyChanges(
        changesMessage('4', '5', [
          {
            table: 'lists',
            op: 'insert',
            pk: { id },
            values: { id, name: 'Groceries', owner_id: 'u1' },
            hlc: serverStamp(Date.now()),
          },
        ]),
      );
      expect(applied).not.toBeInstanceOf(Promise);
      expect(replica.cursor).toBe('5');
      expect(await raw(db, 'SELECT name FROM lists')).toEqual([{ name: 'Groceries' }]);
      const gap = replica.applyChanges(changesMessage('9', '10', []));
      expect(gap).toBeInstanceOf(Promise);
      await expect(gap).rejects.toThrow(/cursor is 5/);
    } finally {
      await db.close();
    }
  });
});
