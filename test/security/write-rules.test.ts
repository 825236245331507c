import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { boolean, eq, schema, table, text, UsageError, uuid } from '../../src/index.js';
import type { SyncRules } from '../../src/sync/server/index.js';
import { RuleSet, type WriteChange } from '../../src/sync/server/rules.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';
import { changeReaches, connectUser, deleteOf, insertOf, updateOf } from './rule-pushes.js';

/**
 * Issue 17, point 5: a write rule that sees the row before and after a change separately cannot
 * keep a column out of clients' hands (a client set `approved = true` on its own row). A table
 * rule can now list the columns clients may write (`writableColumns`: any other column must keep
 * its value, or on insert its default), and the change form `writeChange(user, { op, before,
 * after })` judges a change in one call with both rows. The row form `write(user, row, op)` works
 * as before.
 */

const tasks = table('tasks', {
  id: uuid().primaryKey(),
  ownerId: text('owner_id').notNull(),
  title: text().notNull(),
  done: boolean().notNull().default(false),
  approved: boolean().notNull().default(false),
  note: text(),
});
const posts = table('posts', {
  id: uuid().primaryKey(),
  ownerId: text('owner_id').notNull(),
  title: text().notNull(),
  approved: boolean().notNull().default(false),
});
const rulesSchema = schema({ tasks, posts });

/** Every call of the posts rule, to show it is asked once per change with both rows. */
const asked: WriteChange<typeof posts.$inferSelect>[] = [];

const rules: SyncRules<typeof rulesSchema> = {
  tasks: {
    read: (user) => eq(tasks.ownerId, user.userId),
    write: (user, row) => row.ownerId === user.userId,
    writableColumns: ['ownerId', 'title', 'done', 'note'],
  },
  posts: {
    read: () => true,
    // Editors approve; authors edit their posts, approved or not, but never approve them.
    writeChange: (user, change) => {
      asked.push(change);
      if (user.role === 'editor') return true;
      if (change.op === 'insert') return change.after.ownerId === user.userId && !change.after.approved;
      if (change.op === 'delete') return change.before?.ownerId === user.userId;
      return (
        change.before.ownerId === user.userId &&
        change.after.ownerId === user.userId &&
        change.after.approved === change.before.approved
      );
    },
  },
};

for (const driver of serverDrivers) {
  describe(`write rules [${driver}]`, () => {
    it('writableColumns: a push that writes any other column is rejected, naming the column', async () => {
      const t = await startTestServer(rulesSchema, { driver, rules });
      const ann = await connectUser(t, 'ann');
      const annElsewhere = await connectUser(t, 'ann', ['tasks']);
      const id = randomUUID();
      const row = {
        id,
        owner_id: 'ann',
        title: 'write the report',
        done: false,
        approved: false,
        note: null,
      };
      const refused = (op: string, column: string) =>
        `tasks: the ${op} of row {"id":"${id}"} writes the column ${column}, which clients may not write (writableColumns: ownerId, title, done, note)`;
      expect((await ann.push(insertOf(tasks, row))).status).toBe('applied');

      // The attack: approving her own task, alone or among allowed columns.
      expect(await ann.push(updateOf(tasks, id, { approved: true }))).toMatchObject({
        status: 'rejected',
        reason: refused('update', 'approved'),
        rows: [{ row: { approved: false } }],
      });
      expect(await ann.push(updateOf(tasks, id, { title: 'done it', approved: true }))).toMatchObject({
        status: 'rejected',
        reason: refused('update', 'approved'),
      });
      // An insert of the existing row is an update of it: the same holds.
      expect(await ann.push(insertOf(tasks, { ...row, approved: true }))).toMatchObject({
        reason: refused('insert', 'approved'),
      });
      expect(await t.external('SELECT approved, title FROM tasks')).toEqual([
        { approved: false, title: 'write the report' },
      ]);

      // Allowed columns still change, and reach her other client within a second.
      expect((await ann.push(updateOf(tasks, id, { title: 'report', done: true }))).status).toBe('applied');
      expect((await ann.push(insertOf(tasks, { ...row, note: 'whole row again' }))).status).toBe('applied');
      await changeReaches(annElsewhere.client, id);

      // Once the server approves it, a push that leaves `approved` as it is goes through.
      await t.server.db.update(tasks).set({ approved: true }).where(eq(tasks.id, id));
      expect((await ann.push(insertOf(tasks, { ...row, title: 'report v2', approved: true }))).status).toBe(
        'applied',
      );
      expect(await ann.push(updateOf(tasks, id, { approved: false }))).toMatchObject({
        reason: refused('update', 'approved'),
      });
      expect(await t.external('SELECT approved, title FROM tasks')).toEqual([
        { approved: true, title: 'report v2' },
      ]);
    });

    it('writableColumns: an insert must leave every other column at its default', async () => {
      const t = await startTestServer(rulesSchema, { driver, rules });
      const ann = await connectUser(t, 'ann');
      const [approved, plain] = [randomUUID(), randomUUID()];
      const row = { owner_id: 'ann', title: 't', done: true, approved: false, note: 'n' };
      expect(await ann.push(insertOf(tasks, { ...row, id: approved, approved: true }))).toMatchObject({
        status: 'rejected',
        reason: `tasks: the insert of row {"id":"${approved}"} writes the column approved, which clients may not write (writableColumns: ownerId, title, done, note)`,
      });
      expect((await ann.push(insertOf(tasks, { ...row, id: plain }))).status).toBe('applied');
      expect((await ann.push(deleteOf(tasks, plain))).status).toBe('applied');
      // Deleting a task and inserting it again approved is an insert: refused too.
      expect(await ann.push(insertOf(tasks, { ...row, id: plain, approved: true }))).toMatchObject({
        status: 'rejected',
      });
      expect(await t.external('SELECT id FROM tasks')).toEqual([]);
    });

    it('writeChange: one call per change with both rows, for what the row form cannot say', async () => {
      const t = await startTestServer(rulesSchema, { driver, rules });
      const ann = await connectUser(t, 'ann');
      const editor = await connectUser(t, 'eve', [], { role: 'editor' });
      const reader = await connectUser(t, 'bob', ['posts']);
      const id = randomUUID();
      const post = { id, owner_id: 'ann', title: 'draft', approved: false };
      asked.length = 0;
      expect((await ann.push(insertOf(posts, post))).status).toBe('applied');
      expect((await ann.push(updateOf(posts, id, { title: 'final' }))).status).toBe('applied');
      expect(asked).toEqual([
        { op: 'insert', before: undefined, after: { id, ownerId: 'ann', title: 'draft', approved: false } },
        {
          op: 'update',
          before: { id, ownerId: 'ann', title: 'draft', approved: false },
          after: { id, ownerId: 'ann', title: 'final', approved: false },
        },
      ]);

      expect(await ann.push(updateOf(posts, id, { approved: true }))).toMatchObject({
        status: 'rejected',
        reason: `posts: the write rule refused the update of row {"id":"${id}"}`,
      });
      expect((await editor.push(updateOf(posts, id, { approved: true }))).status).toBe('applied');
      // An approved post is still hers to edit (the row form would have to refuse it or allow
      // approving), but not to un-approve.
      expect((await ann.push(updateOf(posts, id, { title: 'final, fixed' }))).status).toBe('applied');
      expect((await ann.push(updateOf(posts, id, { approved: false }))).status).toBe('rejected');
      expect(await t.external('SELECT title, approved FROM posts')).toEqual([
        { title: 'final, fixed', approved: true },
      ]);
      await changeReaches(reader.client, id);
    });
  });
}

describe('write rules are checked when the server starts', () => {
  it('refuses a writableColumns that names no column, or a table that no rule lets clients write', () => {
    expect(
      () =>
        new RuleSet(rulesSchema, {
          tasks: { write: () => true, writableColumns: ['title', 'owner_id' as any] },
        }),
    ).toThrow(
      new UsageError(
        'rules.tasks.writableColumns: "owner_id" is not a column key of tasks; use the keys of table(): id, ownerId, title, done, approved, note',
      ),
    );
    expect(
      () => new RuleSet(rulesSchema, { tasks: { read: () => true, writableColumns: ['title'] } }),
    ).toThrow(/rules\.tasks\.writableColumns: the table has no write or writeChange rule/);
    expect(() => new RuleSet(rulesSchema, { posts: { writeChange: true as any } })).toThrow(
      /rules\.posts\.writeChange: expected a function, got boolean/,
    );
  });

  it('the two forms are told apart by their key, and typed by their table', () => {
    const typed: SyncRules<typeof rulesSchema> = {
      tasks: {
        write: (user, row, op) => op !== 'delete' && row.ownerId === user.userId,
        // @ts-expect-error: a writable column is a column key of the table
        writableColumns: ['owner_id'],
      },
      posts: {
        writeChange: (user, { op, before, after }) =>
          // @ts-expect-error: a delete's row before may be missing (a key that never existed)
          (op === 'delete' && before.ownerId === user.userId) || after?.ownerId === user.userId,
      },
    };
    expect(Object.keys(typed)).toEqual(['tasks', 'posts']);
  });
});
