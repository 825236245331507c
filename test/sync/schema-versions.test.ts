import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  type AnyTable,
  boolean,
  type Database,
  eq,
  integer,
  openDatabase,
  type Schema,
  SchemaMismatchError,
  schema,
  sql,
  table,
  text,
  uuid,
} from '../../src/index.js';
import { type SyncClient, syncClient } from '../../src/sync/client/index.js';
import { SocketTap } from '../support/sync-fixture.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';

// One app, three schema versions, as an app store rolls them out:
//   v1: lists, todos (id, list_id, title, done)
//   v2: todos gains priority (NOT NULL DEFAULT 0) and note (nullable); a new table, labels
//   v3: todos.title is renamed text
// and, for the refusal, v4: todos.done is dropped.
const lists = table('lists', { id: uuid().primaryKey(), name: text().notNull() });
const base = {
  id: uuid().primaryKey(),
  listId: uuid('list_id')
    .notNull()
    .references(() => lists.id),
  done: boolean().notNull().default(false),
};
const todosV1 = table('todos', { ...base, title: text().notNull() });
const v2Columns = { priority: integer().notNull().default(0), note: text() };
const todosV2 = table('todos', { ...base, title: text().notNull(), ...v2Columns });
const labels = table('labels', { id: uuid().primaryKey(), name: text().notNull() });
const todosV3 = table('todos', { ...base, text: text().notNull(), ...v2Columns });
const { done: _dropped, ...withoutDone } = base;
const todosV4 = table('todos', { ...withoutDone, text: text().notNull(), ...v2Columns });

const v1 = schema({ lists, todos: todosV1 }, { version: 1 });
const v2 = schema(
  { lists, todos: todosV2, labels },
  {
    version: 2,
    migrations: {
      2: async (m) => {
        await m.addColumn(todosV2, todosV2.priority);
        await m.addColumn(todosV2, todosV2.note);
        await m.createTable(labels);
      },
    },
  },
);
const v3 = schema(
  { lists, todos: todosV3, labels },
  {
    version: 3,
    migrations: {
      ...v2.migrations,
      3: async (m) => {
        await m.renameColumn(todosV3, 'title', 'text');
      },
    },
  },
);
const v4 = schema(
  { lists, todos: todosV4, labels },
  {
    version: 4,
    migrations: {
      ...v3.migrations,
      4: async (m) => {
        await m.dropColumn(todosV4, 'done');
      },
    },
  },
);

const LIST = '10000000-0000-4000-8000-000000000001';
const todo = (n: number) => `20000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const LABEL = '30000000-0000-4000-8000-000000000001';

interface Client {
  db: Database<any>;
  sync: SyncClient;
  tap: SocketTap;
  errors: Error[];
}

const dirs: string[] = [];
const opened: Client[] = [];
afterEach(async () => {
  for (const c of opened.splice(0)) {
    await c.sync.stop();
    await c.db.close();
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dbFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-versions-'));
  dirs.push(dir);
  return join(dir, 'app.db');
}

/** A client built with `appSchema` on the SQLite file `path`, syncing every table it has. */
async function client(t: TestServer<Schema>, appSchema: Schema, path: string): Promise<Client> {
  const db = await openDatabase(appSchema, sqlite({ path }));
  const tap = new SocketTap();
  const sync = syncClient(db, {
    url: t.url,
    token: await t.token('u1'),
    shapes: appSchema.tableList.map((table: AnyTable) => ({ table })),
    backoff: { initialMs: 10, maxMs: 100 },
    WebSocket: tap.WebSocket,
  });
  const errors: Error[] = [];
  sync.on('error', (error) => errors.push(error));
  const made = { db, sync, tap, errors };
  opened.push(made);
  return made;
}

async function close(c: Client): Promise<void> {
  opened.splice(opened.indexOf(c), 1);
  await c.sync.stop();
  await c.db.close();
}

async function settle(...clients: Client[]): Promise<void> {
  for (const c of clients) await c.sync.flush();
  for (const c of clients) await c.sync.caughtUp();
}

async function rows(db: Database<any>, name: string): Promise<Record<string, unknown>[]> {
  return db.execute(sql`SELECT * FROM ${sql.identifier(name)} ORDER BY id`);
}

/** The server's todos as an app of `columns` sees them (booleans as SQLite keeps them). */
function projected(server: Record<string, unknown>[], columns: Record<string, string>) {
  return server.map((row) =>
    Object.fromEntries(
      Object.entries(columns).map(([client, name]) => {
        const value = row[name];
        return [client, typeof value === 'boolean' ? Number(value) : value];
      }),
    ),
  );
}

for (const driver of serverDrivers) {
  describe(`clients on other schema versions [${driver}]`, () => {
    it('serves v1, v2 and v3 clients writing at once, then a v1 client updated to v3 keeps its offline writes and fills only what is new', async () => {
      const t = (await startTestServer(v3, {
        driver,
        clientSchemas: { renamedColumns: { todos: { title: 'text' } } },
      })) as unknown as TestServer<Schema>;
      await t.server.db.execute(sql`INSERT INTO lists (id, name) VALUES (${LIST}, 'Groceries')`);
      const oldPath = dbFile();
      const c1 = await client(t, v1, oldPath);
      const c2 = await client(t, v2, dbFile());
      const c3 = await client(t, v3, dbFile());
      await Promise.all([c1.sync.start(), c2.sync.start(), c3.sync.start()]);
      await settle(c1, c2, c3);

      // All three write at once, each in its own columns.
      await Promise.all([
        c1.db.insert(todosV1).values({ id: todo(1), listId: LIST, title: 'one', done: true }),
        c2.db.insert(todosV2).values({ id: todo(2), listId: LIST, title: 'two', priority: 5, note: 'n2' }),
        c2.db.insert(labels).values({ id: LABEL, name: 'home' }),
        c3.db.insert(todosV3).values({ id: todo(3), listId: LIST, text: 'three', priority: 7 }),
      ]);
      await settle(c1, c2, c3);
      // v1 edits v3's todo by its old column name; the backend sets a column v1 does not have.
      await c1.db
        .update(todosV1)
        .set({ title: 'three!' })
        .where(eq(todosV1.id, todo(3)));
      await t.server.db.execute(sql`UPDATE todos SET priority = 9 WHERE id = ${todo(1)}`);
      await settle(c1, c2, c3);

      const server = await rows(t.server.db, 'todos');
      expect(server.map((r) => [r.text, r.priority, r.note, r.done])).toEqual([
        ['one', 9, null, true], // priority filled with its default, then set by the backend
        ['two', 5, 'n2', false],
        ['three!', 7, null, false],
      ]);
      const v1Columns = { id: 'id', list_id: 'list_id', done: 'done', title: 'text' };
      const v2Columns = { ...v1Columns, priority: 'priority', note: 'note' };
      const v3Columns = {
        id: 'id',
        list_id: 'list_id',
        done: 'done',
        text: 'text',
        priority: 'priority',
        note: 'note',
      };
      const columnsOf = async (c: Client) =>
        (await rows(c.db, 'todos')).map((row) => Object.fromEntries(Object.entries(row).sort()));
      const sorted = (list: Record<string, unknown>[]) =>
        list.map((row) => Object.fromEntries(Object.entries(row).sort()));
      expect(await columnsOf(c1)).toEqual(sorted(projected(server, v1Columns)));
      expect(await columnsOf(c2)).toEqual(sorted(projected(server, v2Columns)));
      expect(await columnsOf(c3)).toEqual(sorted(projected(server, v3Columns)));
      expect(await rows(c3.db, 'labels')).toEqual([{ id: LABEL, name: 'home' }]);
      for (const c of [c1, c2, c3]) expect(c.errors).toEqual([]);

      // v1 goes offline and writes: a new todo, and an edit of one by its old column name.
      await c1.sync.stop();
      await c1.db.insert(todosV1).values({ id: todo(4), listId: LIST, title: 'offline', done: false });
      await c1.db
        .update(todosV1)
        .set({ title: 'one, edited offline' })
        .where(eq(todosV1.id, todo(1)));
      await close(c1);

      // The app updates: SQLite migrates to v3 (the rename moves the pending rows' key too).
      const updated = await client(t, v3, oldPath);
      await updated.sync.start();
      await settle(updated, c2, c3);
      const after = await rows(t.server.db, 'todos');
      expect(after.map((r) => [r.id, r.text, r.priority])).toEqual([
        [todo(1), 'one, edited offline', 9],
        [todo(2), 'two', 5],
        [todo(3), 'three!', 7],
        [todo(4), 'offline', 0],
      ]);
      expect(await columnsOf(updated)).toEqual(sorted(projected(after, v3Columns)));
      expect(await rows(updated.db, 'labels')).toEqual([{ id: LABEL, name: 'home' }]);
      // Only what is new was snapshotted: todos (new columns) and labels (a new table), not lists.
      const snapshots = updated.tap.recent
        .filter((line) => line.startsWith('< {"type":"snapshot"'))
        // The tap keeps a line's first 600 characters: the shape id comes early in it.
        .map((line) => /"shapeId":"([^"]+)"/.exec(line)?.[1]);
      expect([...new Set(snapshots)].sort()).toEqual(['labels', 'todos']);
      expect(updated.errors).toEqual([]);
    }, 60_000);

    it('refuses a version older than clientSchemas.oldestVersion, saying so', async () => {
      const t = (await startTestServer(v3, {
        driver,
        clientSchemas: { oldestVersion: 2, renamedColumns: { todos: { title: 'text' } } },
      })) as unknown as TestServer<Schema>;
      const old = await client(t, v1, dbFile());
      await expect(old.sync.start()).rejects.toThrow(
        /built for schema version 1, older than the oldest this server serves \(2\); update the app/,
      );
      const current = await client(t, v2, dbFile());
      await current.sync.start();
      expect(current.sync.status).toBe('online');
    });

    it('refuses a client whose column the server dropped, naming it, and keeps its outbox for after the update', async () => {
      const t = (await startTestServer(v4, { driver })) as unknown as TestServer<Schema>;
      const path = dbFile();
      const old = await client(t, v1, path);
      await old.db.insert(lists).values({ id: LIST, name: 'Groceries' });
      await old.db.insert(todosV1).values({ id: todo(1), listId: LIST, title: 'kept', done: true });
      const outboxBefore = await old.db.execute(sql`SELECT seq, row FROM _syncline_outbox`);
      expect(outboxBefore.length).toBeGreaterThan(0);
      await expect(old.sync.start()).rejects.toThrow(SchemaMismatchError);
      expect(old.errors.map((e) => e.message).join('\n')).toMatch(
        /column "todos.done" is not on the server \(dropped there\).*update the app/,
      );
      expect(await old.db.execute(sql`SELECT seq, row FROM _syncline_outbox`)).toEqual(outboxBefore);
      expect(await t.server.db.execute(sql`SELECT id FROM todos`)).toEqual([]);
      await close(old);

      const updated = await client(t, v4, path);
      await updated.sync.start();
      await settle(updated);
      expect(await t.server.db.execute(sql`SELECT id, text FROM todos`)).toEqual([
        { id: todo(1), text: 'kept' },
      ]);
      expect(updated.errors).toEqual([]);
    }, 60_000);
  });
}
