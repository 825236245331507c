import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type AnyTable,
  and,
  type Database,
  eq,
  inArray,
  localTable,
  schema,
  sql,
  table,
  text,
  UsageError,
  uuid,
} from '../../src/index.js';
import { encodeHlc, HybridLogicalClock } from '../../src/sync/protocol/hlc.js';
import type { ChangeJson } from '../../src/sync/protocol/messages-client.js';
import { encodeRow } from '../../src/sync/protocol/value-codec.js';
import { applyPush, type PushContext } from '../../src/sync/server/apply-push.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { RuleSet, type SyncRules, type SyncUser } from '../../src/sync/server/rules.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';

/**
 * Who may read and write what (docs/design.md section 4): without rules every user may do everything;
 * with rules a table without one is closed, one with `read` only is read-only, and a write rule
 * is asked about every row a push would change (before and after, for an update).
 */

const lists = table('lists', {
  id: uuid().primaryKey(),
  name: text().notNull(),
  ownerId: text('owner_id').notNull(),
});
const todos = table('todos', {
  id: uuid().primaryKey(),
  listId: uuid('list_id').notNull(),
  title: text().notNull(),
});
const notes = table('notes', { id: uuid().primaryKey(), body: text() });
const drafts = localTable('drafts', { id: uuid().primaryKey(), body: text() });
const rulesSchema = schema({ lists, todos, notes, drafts });

const ownLists = (user: SyncUser) => eq(lists.ownerId, user.userId);

function ownerRules(db?: Database<typeof rulesSchema>): SyncRules<typeof rulesSchema> {
  return {
    lists: { read: ownLists, write: (user, row) => row.ownerId === user.userId },
    todos: {
      read: (user) =>
        db ? inArray(todos.listId, db.select({ id: lists.id }).from(lists).where(ownLists(user))) : true,
    },
  };
}

const ann: SyncUser = { userId: 'ann' };
const bob: SyncUser = { userId: 'bob', role: 'viewer' };

describe('RuleSet', () => {
  it('without rules everything synced is open; local tables never are', async () => {
    const open = new RuleSet(rulesSchema, undefined);
    expect(open.open).toBe(true);
    expect(open.canRead(notes) && open.canWrite(notes)).toBe(true);
    expect(open.readFilter(notes, ann)).toBeUndefined();
    expect(await open.checkWrite(notes, ann, 'delete', { id: 'x' }, undefined)).toBeUndefined();
    expect(open.canRead(drafts) || open.canWrite(drafts)).toBe(false);
    expect(open.readFilter(drafts, ann)).toBe('none');
  });

  it('with rules: a table without a rule is closed, read without write is read-only', async () => {
    const rules = new RuleSet(rulesSchema, ownerRules());
    expect(rules.open).toBe(false);
    expect([rules.canRead(notes), rules.canWrite(notes)]).toEqual([false, false]);
    expect([rules.canRead(todos), rules.canWrite(todos)]).toEqual([true, false]);
    expect(rules.readFilter(notes, ann)).toBe('none');
    expect(rules.readFilter(todos, ann)).toBeUndefined();
    expect(await rules.checkWrite(todos, ann, 'insert', undefined, { id: 'x' })).toBe(
      'todos: the table is read-only (its rule has no write)',
    );
    expect(await rules.checkWrite(notes, ann, 'insert', undefined, { id: 'x' })).toMatch(
      /^notes: the table is not writable/,
    );
  });

  it('read gives a condition, every row (true/undefined) or none (false)', () => {
    const rules = new RuleSet(rulesSchema, {
      lists: { read: ownLists },
      todos: { read: () => false },
      notes: { read: (user) => user.role === 'viewer' },
    });
    expect(rules.readFilter(lists, ann)).toEqual(ownLists(ann));
    expect(rules.readFilter(todos, ann)).toBe('none');
    expect(rules.readFilter(notes, ann)).toBe('none');
    expect(rules.readFilter(notes, bob)).toBeUndefined();
    const broken = new RuleSet(rulesSchema, { lists: { read: () => 'owner_id = 1' as any } });
    expect(() => broken.readFilter(lists, ann)).toThrow(
      /rules\.lists\.read returned string; return a condition/,
    );
  });

  it('write: inserts ask about the new row, deletes the current one, updates both', async () => {
    const asked: [string, string, string][] = [];
    const rules = new RuleSet(rulesSchema, {
      lists: {
        write: async (user, row, op) => {
          asked.push([op, row.name, row.ownerId]);
          return row.ownerId === user.userId;
        },
      },
    });
    const mine = { id: 'a', name: 'mine', ownerId: 'ann' };
    expect(await rules.checkWrite(lists, ann, 'insert', undefined, mine)).toBeUndefined();
    expect(await rules.checkWrite(lists, ann, 'update', mine, { ...mine, ownerId: 'bob' })).toBe(
      'lists: the write rule refused the update of row {"id":"a"}',
    );
    expect(await rules.checkWrite(lists, bob, 'update', mine, { ...mine, ownerId: 'bob' })).toMatch(
      /refused/,
    );
    expect(await rules.checkWrite(lists, ann, 'delete', mine, undefined)).toBeUndefined();
    expect(asked).toEqual([
      ['insert', 'mine', 'ann'],
      ['update', 'mine', 'ann'],
      ['update', 'mine', 'bob'],
      ['update', 'mine', 'ann'],
      ['delete', 'mine', 'ann'],
    ]);
    const throwing = new RuleSet(rulesSchema, {
      lists: {
        write: () => {
          throw new Error('no profile');
        },
      },
    });
    expect(await throwing.checkWrite(lists, ann, 'insert', undefined, mine)).toBe(
      'lists: the write rule failed on the insert of row {"id":"a"}: no profile',
    );
  });

  it('refuses rules for unknown or local tables and malformed rules, naming them', () => {
    expect(() => new RuleSet(rulesSchema, { todo: {} } as any)).toThrow(
      /rules: "todo" is not a table of the schema; use the table keys of schema\(\{\.\.\.\}\): lists, todos, notes/,
    );
    expect(() => new RuleSet(rulesSchema, { drafts: {} })).toThrow(UsageError);
    expect(() => new RuleSet(rulesSchema, { drafts: {} })).toThrow(/"drafts" is a local table/);
    expect(() => new RuleSet(rulesSchema, { lists: { write: true } as any })).toThrow(
      /rules\.lists\.write: expected a function, got boolean/,
    );
    expect(() => new RuleSet(rulesSchema, [] as any)).toThrow(/one rule per table key/);
  });
});

const base = Date.now() - 30_000;
const at = (ms: number) => encodeHlc({ wallMs: base + ms, counter: 0, nodeId: 'client' });
const change = (t: AnyTable, op: ChangeJson['op'], row: Record<string, unknown>, ms: number): ChangeJson => ({
  table: t.$name,
  op,
  pk: { id: row.id as string },
  ...(op === 'delete' ? {} : { values: encodeRow(t, row) }),
  hlc: at(ms),
});

dialectSuite(
  'rules on push',
  (env) => {
    async function open() {
      const db = await env.open(rulesSchema);
      await installCapture(db, rulesSchema.tableList);
      const rules = new RuleSet(rulesSchema, ownerRules(db));
      const ctx = (user: SyncUser): PushContext => ({
        db,
        schema: rulesSchema,
        clientId: randomUUID(),
        user,
        rules,
        clock: new HybridLogicalClock('server'),
      });
      return { db, rules, ctx };
    }

    it('applies allowed writes and rejects refused ones whole, restoring only readable rows', async () => {
      const { db, ctx } = await open();
      const [mine, bobs] = [randomUUID(), randomUUID()];
      await db.insert(lists).values({ id: bobs, name: "bob's", ownerId: 'bob' });
      const results = await applyPush(ctx(ann), [
        { mutationId: 1, changes: [change(lists, 'insert', { id: mine, name: 'mine', owner_id: 'ann' }, 1)] },
        {
          mutationId: 2,
          changes: [
            change(lists, 'update', { id: mine, name: 'mine, renamed' }, 2),
            change(lists, 'update', { id: bobs, name: 'stolen' }, 2),
          ],
        },
        { mutationId: 3, changes: [change(lists, 'update', { id: mine, owner_id: 'bob' }, 3)] },
        {
          mutationId: 4,
          changes: [change(todos, 'insert', { id: randomUUID(), list_id: mine, title: 't' }, 4)],
        },
        { mutationId: 5, changes: [change(notes, 'delete', { id: randomUUID() }, 5)] },
        { mutationId: 6, changes: [change(lists, 'delete', { id: bobs }, 6)] },
      ]);
      expect(results.map((r) => (r.status === 'rejected' ? r.reason : r.status))).toEqual([
        'applied',
        `lists: the write rule refused the update of row {"id":"${bobs}"}`,
        `lists: the write rule refused the update of row {"id":"${mine}"}`,
        'todos: the table is read-only (its rule has no write)',
        "notes: the table is not writable (the server's rules have none for it)",
        `lists: the write rule refused the delete of row {"id":"${bobs}"}`,
      ]);
      // Ann sees her own list as the server has it, and null for Bob's, which she may not read.
      expect(results[1]).toMatchObject({
        rows: [
          { table: 'lists', pk: { id: mine }, row: { id: mine, name: 'mine', owner_id: 'ann' } },
          { table: 'lists', pk: { id: bobs }, row: null },
        ],
      });
      expect(await db.select().from(lists).orderBy(lists.name)).toEqual([
        { id: bobs, name: "bob's", ownerId: 'bob' },
        { id: mine, name: 'mine', ownerId: 'ann' },
      ]);
    });

    it('read filters, subqueries included, select exactly the rows a user may read', async () => {
      const { db, rules } = await open();
      const [a, b] = [randomUUID(), randomUUID()];
      await db.insert(lists).values([
        { id: a, name: 'A', ownerId: 'ann' },
        { id: b, name: 'B', ownerId: 'bob' },
      ]);
      await db.insert(todos).values([
        { id: randomUUID(), listId: a, title: 'ann 1' },
        { id: randomUUID(), listId: b, title: 'bob 1' },
      ]);
      const titles = async (user: SyncUser) => {
        const filter = rules.readFilter(todos, user);
        if (filter === 'none') return [];
        const rows = await db.select({ title: todos.title }).from(todos).where(and(filter));
        return rows.map((r) => r.title);
      };
      expect(await titles(ann)).toEqual(['ann 1']);
      expect(await titles(bob)).toEqual(['bob 1']);
      expect(await titles({ userId: 'carl' })).toEqual([]);
      expect(rules.readFilter(notes, ann)).toBe('none');
      const readable = await db.execute(sql`select count(*)::int as n from ${lists}`);
      expect(readable).toEqual([{ n: 2 }]);
    });
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);
