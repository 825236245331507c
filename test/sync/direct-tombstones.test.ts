import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { boolean, eq, integer, schema, sql, table, text, timestamp, uuid } from '../../src/index.js';
import type { AnyTable } from '../../src/schema/table.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import type { ChangeJson } from '../../src/sync/protocol/messages-client.js';
import type { AckResult } from '../../src/sync/protocol/messages-server.js';
import { encodeRow } from '../../src/sync/protocol/value-codec.js';
import type { SyncRules } from '../../src/sync/server/rules.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { testPusher } from '../support/test-pusher.js';

/**
 * A row deleted by anyone keeps its tombstone and its image, as a pushed delete does: a direct
 * DELETE (server.db or another connection), a TRUNCATE, a foreign key's ON DELETE CASCADE of a
 * direct or a pushed delete (docs/sync-internals.md, "Stamps and conflicts"). So an update pushed
 * while the row is deleted is resolved against the image, and a later re-creating insert older
 * than that update keeps the update's columns: the same set of changes ends the same whatever
 * order it arrives in.
 */

const lists = table('lists', { id: uuid().primaryKey(), name: text().notNull() });

const todos = table('todos', {
  id: uuid().primaryKey(),
  listId: uuid('list_id')
    .notNull()
    .references(() => lists.id, { onDelete: 'cascade' }),
  title: text().notNull(),
  done: boolean().notNull(),
  rank: integer().notNull(),
  dueAt: timestamp('due_at'),
});

const notes = table('notes', {
  id: uuid().primaryKey(),
  listId: uuid('list_id').references(() => lists.id, { onDelete: 'set null' }),
  body: text().notNull(),
});

const boards = table('boards', { id: uuid().primaryKey(), code: text().notNull().unique() });

const cards = table('cards', {
  id: uuid().primaryKey(),
  boardCode: text('board_code')
    .notNull()
    .references(() => boards.code, { onUpdate: 'cascade' }),
  title: text().notNull(),
});

const tombstoneSchema = schema({ lists, todos, notes, boards, cards });
type Server = TestServer<typeof tombstoneSchema>;

const ins = (t: AnyTable, row: Record<string, unknown>, hlc: string): ChangeJson => ({
  table: t.$name,
  op: 'insert',
  pk: encodeRow(t, { id: row.id }),
  values: encodeRow(t, row),
  hlc,
});
const upd = (t: AnyTable, id: string, values: Record<string, unknown>, hlc: string): ChangeJson => ({
  table: t.$name,
  op: 'update',
  pk: { id },
  values: encodeRow(t, values),
  hlc,
});
const del = (t: AnyTable, id: string, hlc: string): ChangeJson => ({
  table: t.$name,
  op: 'delete',
  pk: { id },
  hlc,
});

/** Every order of `items` in which each `[a, b]` of `before` keeps a before b. */
function orders(items: readonly string[], before: readonly (readonly [string, string])[] = []): string[][] {
  const all = (rest: readonly string[]): string[][] =>
    rest.length <= 1
      ? [[...rest]]
      : rest.flatMap((x) => all(rest.filter((y) => y !== x)).map((p) => [x, ...p]));
  return all(items).filter((order) => before.every(([a, b]) => order.indexOf(a) < order.indexOf(b)));
}

/** One run of a scenario: fresh keys, and the pushes and direct writes it may make. */
interface Run {
  readonly listId: string;
  readonly otherListId: string;
  readonly todoId: string;
  /** A stamp `ms` after this run's base, which is 20 s ahead of now: newer than any direct write of the run. */
  later(ms: number): string;
  push(...changes: ChangeJson[]): Promise<AckResult>;
}

for (const driver of serverDrivers) {
  describe(`every delete keeps its tombstone and image [${driver}]`, () => {
    const pusher = (t: Server) => testPusher(t, tombstoneSchema);

    /**
     * A list, another list, and a todo in the first one, pushed 10 s ago (older than any direct
     * write). `base` (default 20 s ahead) must be past the later stamps of the runs before on the
     * same server: a direct write is stamped after every stamp pushed before it (direct-stamps.test.ts).
     */
    async function begin(t: Server, base = Date.now() + 20_000): Promise<Run> {
      const push = pusher(t);
      const run = {
        listId: randomUUID(),
        otherListId: randomUUID(),
        todoId: randomUUID(),
        later: (ms: number) => encodeHlc({ wallMs: base + ms, counter: 0, nodeId: 'client-b' }),
        push,
      };
      const before = encodeHlc({ wallMs: Date.now() - 10_000, counter: 0, nodeId: 'client-a' });
      await push(
        ins(lists, { id: run.listId, name: 'first' }, before),
        ins(lists, { id: run.otherListId, name: 'other' }, before),
        ins(
          todos,
          {
            id: run.todoId,
            list_id: run.listId,
            title: 'original',
            done: false,
            rank: 1,
            due_at: new Date('2030-01-02T03:04:05.678Z'),
          },
          before,
        ),
      );
      return run;
    }

    const todoOf = async (t: Server, id: string) =>
      (await t.server.db.select().from(todos).where(eq(todos.id, id)))[0];
    const stampsOf = async (t: Server, name: string, id: string) =>
      (
        await t.server.db.execute<{
          cols: Record<string, unknown>;
          created: string | null;
          deleted: string | null;
          image: Record<string, unknown> | null;
        }>(
          sql`select cols, created, deleted, image from _syncline_stamps where table_name = ${name} and pk = ${JSON.stringify({ id })}::jsonb`,
        )
      )[0];

    /**
     * Runs `deleteTodo` (which removes the todo, with the stamp it returns, or a postgres stamp
     * when it returns nothing), an update of the todo newer than a re-creating insert, and that
     * insert (newer than the delete), in every order where the insert comes after the delete, each
     * on fresh rows; returns the outcomes (the todo as the server ends with it) by order.
     */
    async function deliverInEveryOrder(
      t: Server,
      deleteTodo: (run: Run) => Promise<void>,
      before: readonly (readonly [string, string])[],
    ): Promise<Map<string, string[]>> {
      const outcomes = new Map<string, string[]>();
      let base = Date.now() + 20_000;
      for (const order of orders(['delete', 'update', 'insert'], before)) {
        const run = await begin(t, base);
        base += 4_000;
        const steps: Record<string, () => Promise<unknown>> = {
          delete: async () => {
            await deleteTodo(run);
            const stamps = await stampsOf(t, 'todos', run.todoId);
            // Deleted with a tombstone and the image, as a pushed delete would leave it.
            expect(stamps?.deleted).not.toBeNull();
            expect(stamps?.image).toMatchObject({ id: run.todoId, list_id: run.listId, rank: 1 });
          },
          update: () => run.push(upd(todos, run.todoId, { title: 'renamed', done: true }, run.later(3_000))),
          insert: () =>
            run.push(
              ins(
                todos,
                {
                  id: run.todoId,
                  list_id: run.otherListId,
                  title: 'again',
                  done: false,
                  rank: 2,
                  due_at: null,
                },
                run.later(2_000),
              ),
            ),
        };
        for (const step of order) await steps[step]!();
        const row = await todoOf(t, run.todoId);
        const shown = JSON.stringify(
          row && { ...row, id: '-', listId: row.listId === run.otherListId ? 'other' : row.listId },
        );
        outcomes.set(shown, [...(outcomes.get(shown) ?? []), order.join(' ')]);
      }
      return outcomes;
    }

    /** The one outcome every order must give: the re-created row with the newer update's columns. */
    const expected = JSON.stringify({
      id: '-',
      listId: 'other',
      title: 'renamed',
      done: true,
      rank: 2,
      dueAt: null,
    });

    /** Who deletes the todo, each a test: every order of the same changes must end the same. */
    const deleters: Record<string, (t: Server, run: Run) => Promise<unknown>> = {
      'a direct DELETE through server.db': async (t, run) => {
        await t.server.db.delete(todos).where(eq(todos.id, run.todoId));
      },
      'a direct DELETE from another connection': (t, run) =>
        t.external('DELETE FROM todos WHERE id = $1', [run.todoId]),
      'a TRUNCATE': (t) => t.external('TRUNCATE todos'),
      'an ON DELETE CASCADE of a direct delete': (t, run) =>
        t.external('DELETE FROM lists WHERE id = $1', [run.listId]),
      'an ON DELETE CASCADE of a pushed delete, stamped with the push': async (t, run) => {
        expect(await run.push(del(lists, run.listId, run.later(1_000)))).toMatchObject({ status: 'applied' });
        expect((await stampsOf(t, 'todos', run.todoId))?.deleted).toBe(run.later(1_000));
      },
      'a pushed delete of the child, then of its parent, in one batch': (_t, run) =>
        run.push(del(todos, run.todoId, run.later(1_000)), del(lists, run.listId, run.later(1_000))),
      'a pushed delete of the parent (cascading), then of the child, in one batch': (_t, run) =>
        run.push(del(lists, run.listId, run.later(1_000)), del(todos, run.todoId, run.later(1_000))),
    };
    for (const [name, deleteTodo] of Object.entries(deleters)) {
      it(name, async () => {
        const t = await startTestServer(tombstoneSchema, { driver });
        // A direct delete made after the update was pushed is stamped after it (it has seen it),
        // so it deletes the update too: the same set of changes, with the delete older than the
        // update, means the delete came first.
        const direct = !name.includes('push');
        const before: [string, string][] = direct
          ? [
              ['delete', 'insert'],
              ['delete', 'update'],
            ]
          : [['delete', 'insert']];
        const outcomes = await deliverInEveryOrder(
          t,
          async (run) => {
            await deleteTodo(t, run);
          },
          before,
        );
        expect([...outcomes.keys()]).toEqual([expected]);
      });
    }

    it('an update older than the direct delete loses in every order, also to a re-create', async () => {
      const t = await startTestServer(tombstoneSchema, { driver });
      const outcomes = new Set<string>();
      let base = Date.now() + 20_000;
      for (const order of orders(['delete', 'update', 'insert'], [['delete', 'insert']])) {
        const run = await begin(t, base);
        base += 4_000;
        const older = encodeHlc({ wallMs: Date.now() - 5_000, counter: 0, nodeId: 'client-c' });
        const steps: Record<string, () => Promise<unknown>> = {
          delete: () => t.external('DELETE FROM todos WHERE id = $1', [run.todoId]),
          update: () => run.push(upd(todos, run.todoId, { title: 'stale' }, older)),
          insert: () =>
            run.push(
              ins(
                todos,
                { id: run.todoId, list_id: run.listId, title: 'again', done: false, rank: 2, due_at: null },
                run.later(2_000),
              ),
            ),
        };
        for (const step of order) await steps[step]!();
        const row = await todoOf(t, run.todoId);
        outcomes.add(`${row?.title}`);
      }
      expect([...outcomes]).toEqual(['again']);
    });

    it('a deleted row whose update arrived after the direct delete keeps the update in its stamps', async () => {
      const t = await startTestServer(tombstoneSchema, { driver });
      const run = await begin(t);
      await t.external('DELETE FROM todos WHERE id = $1', [run.todoId]);
      await run.push(upd(todos, run.todoId, { title: 'renamed' }, run.later(3_000)));
      const stamps = await stampsOf(t, 'todos', run.todoId);
      expect(stamps?.deleted).toMatch(/-postgres$/);
      // The image as the delete logged it (timestamps as PostgreSQL writes them), the update beside it.
      expect(stamps?.image).toEqual({
        id: run.todoId,
        list_id: run.listId,
        title: 'original',
        done: false,
        rank: 1,
        due_at: expect.stringMatching(/^2030-01-02T03:04:05\.678/),
      });
      expect(stamps?.cols.title).toEqual({ hlc: run.later(3_000), value: 'renamed' });
      expect(typeof stamps?.cols.rank).toBe('string');
      // A re-create older than the update: the update's title, the insert's other columns.
      await run.push(
        ins(
          todos,
          { id: run.todoId, list_id: run.listId, title: 'back', done: true, rank: 5, due_at: null },
          run.later(2_000),
        ),
      );
      expect(await todoOf(t, run.todoId)).toMatchObject({
        title: 'renamed',
        done: true,
        rank: 5,
        dueAt: null,
      });
      expect(await stampsOf(t, 'todos', run.todoId)).toMatchObject({ deleted: null, image: null });
    });

    it('an update of a row deleted directly is asked about as of the delete, in every order', async () => {
      const t = await startTestServer(tombstoneSchema, { driver });
      const rules: SyncRules<typeof tombstoneSchema> = {
        lists: { read: () => true, write: (user, row) => row.name !== 'locked' || user.userId === 'admin' },
      };
      const statuses = new Set<string>();
      let base = Date.now() + 20_000;
      for (const order of orders(['delete', 'update'])) {
        const run = await begin(t, base);
        base += 4_000;
        await run.push(upd(lists, run.listId, { name: 'locked' }, run.later(0)));
        const pushAsU2 = testPusher(t, tombstoneSchema, rules, 'u2');
        let status = '';
        const steps: Record<string, () => Promise<unknown>> = {
          delete: () => t.external('DELETE FROM lists WHERE id = $1', [run.listId]),
          update: async () => {
            status = (await pushAsU2(upd(lists, run.listId, { name: 'mine' }, run.later(1_000)))).status;
          },
        };
        for (const step of order) await steps[step]!();
        statuses.add(status);
      }
      // The row as it was deleted was locked: u2 may not change it, before the delete or after.
      expect([...statuses]).toEqual(['rejected']);
    });

    it('an ON DELETE SET NULL during a push stamps the column it changed with the push', async () => {
      const t = await startTestServer(tombstoneSchema, { driver });
      const run = await begin(t);
      const noteId = randomUUID();
      await run.push(ins(notes, { id: noteId, list_id: run.listId, body: 'n' }, run.later(0)));
      // The delete of the list sets the note's list_id to null, stamped with the delete's stamp.
      await run.push(del(lists, run.listId, run.later(2_000)));
      expect((await stampsOf(t, 'notes', noteId))?.cols).toEqual({
        id: run.later(0),
        list_id: run.later(2_000),
        body: run.later(0),
      });
      // So an older move of the note loses, a newer one wins.
      await run.push(upd(notes, noteId, { list_id: run.otherListId, body: 'older' }, run.later(1_000)));
      const [note] = await t.server.db.select().from(notes).where(eq(notes.id, noteId));
      expect(note).toEqual({ id: noteId, listId: null, body: 'older' });
      await run.push(upd(notes, noteId, { list_id: run.otherListId }, run.later(3_000)));
      const [moved] = await t.server.db.select().from(notes).where(eq(notes.id, noteId));
      expect(moved?.listId).toBe(run.otherListId);
    });

    it('an ON UPDATE CASCADE during a push stamps the column it changed with the push', async () => {
      const t = await startTestServer(tombstoneSchema, { driver });
      const run = await begin(t);
      const [board, other, card] = [randomUUID(), randomUUID(), randomUUID()];
      await run.push(
        ins(boards, { id: board, code: `a-${board}` }, run.later(0)),
        ins(boards, { id: other, code: `b-${other}` }, run.later(0)),
        ins(cards, { id: card, board_code: `a-${board}`, title: 'c' }, run.later(0)),
      );
      // Renaming the board's code moves the card with it, stamped with the rename's stamp.
      await run.push(upd(boards, board, { code: `c-${board}` }, run.later(2_000)));
      expect((await stampsOf(t, 'cards', card))?.cols).toEqual({
        id: run.later(0),
        board_code: run.later(2_000),
        title: run.later(0),
      });
      // So a move to the other board made before the rename loses to it.
      await run.push(upd(cards, card, { board_code: `b-${other}`, title: 'moved' }, run.later(1_000)));
      const [row] = await t.server.db.select().from(cards).where(eq(cards.id, card));
      expect(row).toEqual({ id: card, boardCode: `c-${board}`, title: 'moved' });
    });

    it("a batch's changes after its parent's delete see what the cascade did", async () => {
      const t = await startTestServer(tombstoneSchema, { driver });
      const run = await begin(t);
      const noteId = randomUUID();
      await run.push(ins(notes, { id: noteId, list_id: run.listId, body: 'n' }, run.later(0)));
      // As a client sends a local transaction that deleted the list (its todo and the note's
      // list_id going with it), then put the todo back under the other list and edited the note.
      const result = await run.push(
        del(lists, run.listId, run.later(1_000)),
        ins(
          todos,
          { id: run.todoId, list_id: run.otherListId, title: 'again', done: true, rank: 3, due_at: null },
          run.later(1_000),
        ),
        upd(notes, noteId, { body: 'edited' }, run.later(1_000)),
      );
      expect(result).toEqual({ mutationId: expect.any(Number), status: 'applied' });
      expect(await todoOf(t, run.todoId)).toMatchObject({ listId: run.otherListId, title: 'again', rank: 3 });
      expect(await stampsOf(t, 'todos', run.todoId)).toMatchObject({
        created: run.later(1_000),
        deleted: null,
        image: null,
      });
      const [note] = await t.server.db.select().from(notes).where(eq(notes.id, noteId));
      expect(note).toEqual({ id: noteId, listId: null, body: 'edited' });
      expect((await stampsOf(t, 'notes', noteId))?.cols).toMatchObject({
        list_id: run.later(1_000),
        body: run.later(1_000),
      });
    });

    it('rows without stamps (from before capture) deleted by a push or its cascade get their stamps once', async () => {
      const t = await startTestServer(tombstoneSchema, { driver });
      const run = await begin(t);
      const [legacyList, legacyTodo] = [randomUUID(), randomUUID()];
      for (const name of ['lists', 'todos']) await t.external(`ALTER TABLE ${name} DISABLE TRIGGER USER`);
      await t.external('INSERT INTO lists (id, name) VALUES ($1, $2)', [legacyList, 'legacy']);
      await t.external('INSERT INTO todos (id, list_id, title, done, rank) VALUES ($1, $2, $3, false, 0)', [
        legacyTodo,
        legacyList,
        'old',
      ]);
      for (const name of ['lists', 'todos']) await t.external(`ALTER TABLE ${name} ENABLE TRIGGER USER`);
      expect(await stampsOf(t, 'todos', legacyTodo)).toBeUndefined();
      // The list's delete cascades to the todo before the batch's own delete of the todo comes.
      const result = await run.push(
        del(lists, legacyList, run.later(1_000)),
        del(todos, legacyTodo, run.later(1_000)),
      );
      expect(result).toMatchObject({ status: 'applied' });
      expect(await stampsOf(t, 'todos', legacyTodo)).toMatchObject({
        deleted: run.later(1_000),
        image: { id: legacyTodo, title: 'old' },
      });
      expect(await stampsOf(t, 'lists', legacyList)).toMatchObject({
        deleted: run.later(1_000),
        image: { id: legacyList, name: 'legacy' },
      });
    });
  });
}
