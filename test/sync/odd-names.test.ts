import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  asc,
  bigint,
  type Database,
  eq,
  integer,
  json,
  like,
  openDatabase,
  primaryKey,
  schema,
  table,
  text,
} from '../../src/index.js';
import type { AnyTable } from '../../src/schema/table.js';
import { type SyncClient, type SyncClientOptions, syncClient } from '../../src/sync/client/index.js';
import { asyncSqlite } from '../support/async-sqlite.js';
import { type ClientDriverKind, driverPairs, within } from '../support/sync-fixture.js';
import { startTestServer, type TestServer } from '../support/sync-server.js';

/**
 * An app's column and table names must never collide with what syncline's generated SQL uses: the
 * server's capture triggers (their transition-table aliases and plpgsql variables), the push and
 * snapshot queries, and the client's outbox triggers. These tables are named like SQL keywords and
 * their columns after every identifier that SQL uses, with NOT NULL columns without defaults (a row
 * that arrives without them fails on a client). Every write must make the whole trip, both ways.
 */

/** Identifiers of syncline's own SQL, and SQL keywords, as column names. */
const ODD = [
  'n',
  'o',
  'origin',
  'stamp',
  'mutation',
  'hlc',
  'op',
  'pk',
  'row',
  'txid',
  'table_name',
  'cursor',
  'enabled',
  'seq',
  'direct',
  'changed',
  'key',
  'old_key',
  'new_rows',
  'old_rows',
  // The update capture's own names (its statement's aliases and plpgsql variables).
  'c0',
  'o0',
  'k',
  'img',
  'bytes',
  'unchanged',
  'omitted',
  'taken',
  'logged',
  'moved_from',
  'too_big',
  'stamps_here',
  'order',
  'group',
  'user',
  'select',
  'default',
] as const;

function oddColumns() {
  const notNullText = () => text().notNull();
  return Object.fromEntries(ODD.map((name) => [name, text(name).notNull()])) as unknown as Record<
    (typeof ODD)[number],
    ReturnType<typeof notNullText>
  >;
}

/** A table named like a keyword, its key a column named like one of our internals. */
const order = table('order', {
  id: text('id').primaryKey(),
  ...oddColumns(),
  amount: bigint('amount').notNull(),
  extra: json<{ a: number }>('extra').notNull(),
});

/** A composite key made of odd names, in a table named like a log table's column. */
const rowTable = table(
  'row',
  {
    pk: text('pk').notNull(),
    n: integer('n').notNull(),
    origin: text('origin').notNull(),
    stamp: text('stamp').notNull(),
    user: text('user').notNull(),
  },
  (t) => [primaryKey({ columns: [t.pk, t.n] })],
);

/** A table named like the aliases of the server's generated SQL. */
const v = table('v', {
  image: text('image').primaryKey(),
  value: text('value').notNull(),
  ord: integer('ord').notNull(),
});

const oddSchema = schema({ order, rowTable, v }, { version: 1 });
type OddDb = Database<typeof oddSchema>;

function values(id: string, tag: string) {
  return {
    id,
    ...Object.fromEntries(ODD.map((name) => [name, `${name}-${tag}`])),
    amount: 9_007_199_254_740_993n,
    extra: { a: 1 },
  } as typeof order.$inferInsert;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function client(
  clientDriver: ClientDriverKind,
  t: TestServer<typeof oddSchema>,
  user: string,
  shapes?: SyncClientOptions['shapes'],
): Promise<{ db: OddDb; sync: SyncClient }> {
  const db = await openDatabase(oddSchema, clientDriver === 'async' ? asyncSqlite() : sqlite());
  const sync = syncClient(db, {
    url: t.url,
    token: await t.token(user),
    backoff: { initialMs: 10, maxMs: 100 },
    ...(shapes ? { shapes } : {}),
  });
  const errors: Error[] = [];
  sync.on('error', (error) => errors.push(error));
  cleanups.push(async () => {
    await sync.stop();
    await db.close();
    expect(
      errors.filter((e) => e.name !== 'SyncConnectionError').map((e) => e.message),
      `errors reported by ${user}'s client`,
    ).toEqual([]);
  });
  return { db, sync };
}

async function dump(db: Database<typeof oddSchema>) {
  const tables: AnyTable[] = [order, rowTable, v];
  const out: Record<string, unknown[]> = {};
  for (const t of tables) {
    const keys = t.$primaryKeyColumns.map((c) => asc(c));
    out[t.$name] = await db
      .select()
      .from(t)
      .orderBy(...keys);
  }
  return out;
}

async function settle(clients: readonly { sync: SyncClient }[]): Promise<void> {
  for (const c of clients) await within(c.sync.flush(), 15_000, 'a client to flush');
  for (const c of clients) await within(c.sync.caughtUp(), 15_000, 'a client to catch up');
}

for (const [driver, clientDriver] of driverPairs) {
  describe(`tables and columns named like keywords and like syncline's internals [${driver}, ${clientDriver} clients]`, () => {
    it('inserts, updates, key changes and deletes make the whole trip, from clients and from the backend', async () => {
      const t = await startTestServer(oddSchema, { driver });
      const a = await client(clientDriver, t, 'u1');
      const b = await client(clientDriver, t, 'u2');
      // Filters PostgreSQL decides (LIKE) and ones decided in TypeScript, on odd columns.
      const filtered = await client(clientDriver, t, 'u4', [
        { table: order, where: like(order.select, 'select-%') },
        { table: rowTable, where: eq(rowTable.origin, 'x') },
        { table: v, where: like(v.value, 'kept%') },
      ]);
      await Promise.all([a.sync.start(), b.sync.start(), filtered.sync.start()]);
      await a.db.insert(v).values([
        { image: 'i1', value: 'kept', ord: 1 },
        { image: 'i2', value: 'dropped', ord: 2 },
      ]);
      await settle([a, filtered]);
      await a.db.update(v).set({ ord: 3 }).allRows();
      await a.db.update(v).set({ value: 'kept too' }).where(eq(v.image, 'i2'));

      // From a client: inserts (one and several rows), updates of one and of every odd column.
      await a.db.insert(order).values(values('o1', 'a'));
      await a.db.insert(order).values([values('o2', 'a'), values('o3', 'a')]);
      await a.db.insert(rowTable).values({ pk: 'k', n: 1, origin: 'x', stamp: 's', user: 'u' });
      await settle([a, b]);
      expect(await dump(b.db)).toEqual(await dump(t.server.db));
      expect((await dump(b.db)).order).toHaveLength(3);

      await a.db.update(order).set({ n: 'n-updated', origin: 'origin-updated' }).where(eq(order.id, 'o1'));
      await a.db
        .update(order)
        .set(Object.fromEntries(ODD.map((name) => [name, `${name}-every`])))
        .where(eq(order.id, 'o2'));
      await a.db.update(rowTable).set({ n: 2, stamp: 's2' }).where(eq(rowTable.pk, 'k'));
      await b.db.update(order).set({ id: 'o3-moved' }).where(eq(order.id, 'o3'));
      await settle([a, b]);
      expect(await dump(a.db)).toEqual(await dump(t.server.db));
      expect(await dump(b.db)).toEqual(await dump(t.server.db));

      // From the backend: the server's own Database, and set-wise SQL from another connection.
      await t.server.db.insert(order).values(values('o4', 'server'));
      await t.external(
        `INSERT INTO "order" (id, ${ODD.map((c) => `"${c}"`).join(', ')}, amount, extra)
         SELECT 'o5', ${ODD.map((c) => `"${c}" || '-copied'`).join(', ')}, amount + 1, extra FROM "order" WHERE id = 'o1'`,
      );
      await t.external(`UPDATE "order" SET "n" = 'n-direct', "select" = 'select-direct' WHERE id = 'o2'`);
      await t.external(`INSERT INTO "row" (pk, n, origin, stamp, "user") VALUES ('k', 3, 'o', 's', 'u')`);
      await t.settled();
      await settle([a, b]);
      expect(await dump(a.db)).toEqual(await dump(t.server.db));
      expect(await dump(b.db)).toEqual(await dump(t.server.db));
      const [copied] = await b.db.select().from(order).where(eq(order.id, 'o5'));
      expect(copied.n).toBe('n-updated-copied');
      expect(copied.origin).toBe('origin-updated-copied');

      // Deletes, both ways.
      await a.db.delete(order).where(eq(order.id, 'o1'));
      await t.external(`DELETE FROM "order" WHERE id = 'o2'`);
      await t.external(`DELETE FROM "row" WHERE n = 3`);
      await t.settled();
      await settle([a, b]);
      const server = await dump(t.server.db);
      expect(server.order.map((r) => (r as { id: string }).id)).toEqual(['o3-moved', 'o4', 'o5']);
      expect(await dump(a.db)).toEqual(server);
      expect(await dump(b.db)).toEqual(server);

      await settle([filtered]);
      const seen = await dump(filtered.db);
      expect(seen.order).toEqual(
        server.order.filter((r) => String((r as { select: string }).select).startsWith('select-')),
      );
      expect(seen.row).toEqual(server.row.filter((r) => (r as { origin: string }).origin === 'x'));
      expect(seen.v).toEqual(server.v);
      expect(seen.v).toHaveLength(2);

      // A client that starts late gets it all in its snapshot.
      const c = await client(clientDriver, t, 'u3');
      await c.sync.start();
      await settle([c]);
      expect(await dump(c.db)).toEqual(server);
    });
  });
}
