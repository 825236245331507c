import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ConstraintError, eq, openDatabase } from '../../src/index.js';
import { clientTransaction } from '../../src/sync/client/client-transaction.js';
import { asyncSqlite } from '../support/async-sqlite.js';
import { allTypes, allTypesEdges, typesSchema } from '../support/fixtures.js';

// The e2e tests' asynchronous client driver (test/support/async-sqlite.ts) must behave like SQLite
// WASM in its worker, or the async client path it stands for is not the one being tested.

const ID = '30000000-0000-4000-8000-000000000001';

it('answers every statement on a later macrotask, and offers no acquireNow()', async () => {
  const driver = asyncSqlite();
  const db = await openDatabase(typesSchema, driver);
  expect(driver.acquireNow).toBeUndefined();
  const answer = driver.query({ sql: 'SELECT 1 AS one', params: [], arrayMode: false, needsBigInt: false });
  expect(answer).toBeInstanceOf(Promise);
  if (!(answer instanceof Promise)) return;
  let settled = false;
  void answer.then(() => (settled = true));
  await Promise.resolve();
  await Promise.resolve();
  expect(settled, 'answered within microtasks').toBe(false);
  expect((await answer).rows).toEqual([{ one: 1 }]);
  // A client transaction takes the promise path, as it does on SQLite WASM.
  const result = clientTransaction(db, false, async (run) => (await run('SELECT 2 AS two')).rows);
  expect(result).toBeInstanceOf(Promise);
  expect(await result).toEqual([{ two: 2 }]);
  await db.close();
});

it('keeps values whole and hands blobs back as plain Uint8Arrays, as a worker does', async () => {
  const db = await openDatabase(typesSchema, asyncSqlite());
  await db.insert(allTypes).values({ ...allTypesEdges, id: ID });
  const [row] = await db.select().from(allTypes).where(eq(allTypes.id, ID));
  expect(row).toEqual({ ...allTypesEdges, id: ID });
  expect(Object.getPrototypeOf(row!.blob)).toBe(Uint8Array.prototype);
  await db.close();
});

it('rejects with the translated SQLite error', async () => {
  const db = await openDatabase(typesSchema, asyncSqlite());
  await db.insert(allTypes).values({ id: ID });
  await expect(db.insert(allTypes).values({ id: ID })).rejects.toBeInstanceOf(ConstraintError);
  await db.close();
});

it('keeps a file database across a close and a reopen (for client processes that restart)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-async-sqlite-'));
  try {
    const path = join(dir, 'client.db');
    const first = await openDatabase(typesSchema, asyncSqlite({ path }));
    await first.insert(allTypes).values({ ...allTypesEdges, id: ID });
    await first.close();
    const again = await openDatabase(typesSchema, asyncSqlite({ path }));
    expect(await again.select().from(allTypes)).toEqual([{ ...allTypesEdges, id: ID }]);
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
