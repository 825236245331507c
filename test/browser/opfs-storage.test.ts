import { expect, it } from 'vitest';
import { SqliteWasmError, sqliteWasm } from '../../src/drivers/sqlite-wasm/index.js';
import { ConstraintError, eq, openDatabase, sql } from '../../src/index.js';
import { appSchema, lists } from '../support/fixtures.js';

const LIST = '10000000-0000-4000-8000-0000000000aa';

it('keeps a named database in OPFS, in a worker, across a close and a reopen', async () => {
  const name = `reopen-${Date.now().toString(36)}.db`;
  const first = sqliteWasm({ name });
  const db = await openDatabase(appSchema, first);
  expect(first.storage).toBe('opfs');
  await db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u1' });
  await db.close();

  const second = sqliteWasm({ name });
  const again = await openDatabase(appSchema, second);
  expect(second.storage).toBe('opfs');
  expect(await again.select({ name: lists.name }).from(lists).where(eq(lists.id, LIST))).toEqual([
    { name: 'Groceries' },
  ]);
  await again.close();
});

it('a database without a name is in memory and starts empty each time', async () => {
  const driver = sqliteWasm();
  const db = await openDatabase(appSchema, driver);
  expect(driver.storage).toBe('memory');
  expect(await db.select().from(lists)).toEqual([]);
  await db.close();
});

it("reports a broken constraint from the worker as ConstraintError, with SQLite's code kept", async () => {
  const db = await openDatabase(appSchema, sqliteWasm());
  await db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u1' });
  const error = await db
    .insert(lists)
    .values({ id: LIST, name: 'Again', ownerId: 'u1' })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(ConstraintError);
  expect((error as ConstraintError).cause).toBeInstanceOf(SqliteWasmError);
  expect(((error as ConstraintError).cause as SqliteWasmError).code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
  await db.close();
});

it('two databases of different names are open in OPFS at once; a second open of the same name shares the first, or is in memory with share: false', async () => {
  const stamp = Date.now().toString(36);
  const a = sqliteWasm({ name: `a-${stamp}.db` });
  const b = sqliteWasm({ name: `b-${stamp}.db` });
  const dbA = await openDatabase(appSchema, a);
  const dbB = await openDatabase(appSchema, b);
  expect([a.storage, b.storage]).toEqual(['opfs', 'opfs']);
  await dbA.insert(lists).values({ id: LIST, name: 'only in a', ownerId: 'u1' });
  expect(await dbB.select().from(lists)).toEqual([]);

  // As a second tab would: the first owns the files, and this one reaches them through it.
  const shared = sqliteWasm({ name: `a-${stamp}.db` });
  const dbShared = await openDatabase(appSchema, shared);
  expect([shared.storage, shared.ownsDatabase, a.ownsDatabase]).toEqual(['opfs', false, true]);
  expect(await dbShared.select({ name: lists.name }).from(lists)).toEqual([{ name: 'only in a' }]);

  // Not shared, it cannot have the files, so it cannot keep its data.
  const alone = sqliteWasm({ name: `a-${stamp}.db`, share: false });
  const dbAlone = await openDatabase(appSchema, alone);
  expect(alone.storage).toBe('memory');
  expect(await dbAlone.select().from(lists)).toEqual([]);
  await Promise.all([dbA.close(), dbB.close(), dbShared.close(), dbAlone.close()]);
});

it('keeps an OPFS database in WAL mode with an exclusive lock (a commit flushes OPFS once), across a reopen', async () => {
  const name = `wal-${Date.now().toString(36)}.db`;
  for (let open = 0; open < 2; open++) {
    const db = await openDatabase(appSchema, sqliteWasm({ name }));
    expect(await db.execute(sql`PRAGMA journal_mode`)).toEqual([{ journal_mode: 'wal' }]);
    expect(await db.execute(sql`PRAGMA locking_mode`)).toEqual([{ locking_mode: 'exclusive' }]);
    if (open === 0) await db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u1' });
    else expect(await db.select({ name: lists.name }).from(lists)).toEqual([{ name: 'Groceries' }]);
    await db.close();
  }
});

it('commits to OPFS with synchronous FULL, or NORMAL when asked (the WAL is then not flushed at each commit)', async () => {
  const stamp = Date.now().toString(36);
  for (const [synchronous, level] of [
    [undefined, 2],
    ['normal', 1],
  ] as const) {
    const db = await openDatabase(appSchema, sqliteWasm({ name: `sync-${stamp}-${level}.db`, synchronous }));
    expect(await db.execute(sql`PRAGMA synchronous`)).toEqual([{ synchronous: level }]);
    await db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u1' });
    await db.close();
  }
});
