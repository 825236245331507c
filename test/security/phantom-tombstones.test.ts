import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eq, schema, table, text, uuid } from '../../src/index.js';
import type { SyncRules } from '../../src/sync/server/index.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';
import { changeReaches, connectUser, deleteOf, insertOf, refusal, stampIn } from './rule-pushes.js';

/**
 * Issue 17, point 6: a delete must not claim a key its pusher never saw. A pushed delete of a key
 * that does not exist used to store a tombstone without asking the write rule, so a user could
 * stamp one a minute ahead and silently swallow another user's insert of that key (answered
 * `applied` with a null row). Now a delete of a row that never existed stores nothing and is
 * asked of a `writeChange` rule (with `before` undefined); a tombstone without the row it deleted
 * (left by an older server) loses to any insert; a delete of a deleted row is asked about the row
 * it deleted. And a refusal names the change the client sent, so its text never tells whether
 * another user's row exists.
 */

const notes = table('notes', {
  id: uuid().primaryKey(),
  ownerId: text('owner_id').notNull(),
  body: text().notNull(),
});
const memos = table('memos', {
  id: uuid().primaryKey(),
  ownerId: text('owner_id').notNull(),
  body: text().notNull(),
});
const phantomSchema = schema({ notes, memos });

const rules: SyncRules<typeof phantomSchema> = {
  // The row form: asked about each row, so not about a delete of a row that never existed.
  notes: {
    read: (user) => eq(notes.ownerId, user.userId),
    write: (user, row) => row.ownerId === user.userId,
  },
  // The change form: a delete needs a row of the user's own, so one of a missing row is refused.
  memos: {
    read: (user) => eq(memos.ownerId, user.userId),
    writeChange: (user, { before, after }) =>
      before === undefined
        ? after?.ownerId === user.userId
        : before.ownerId === user.userId && (after === undefined || after.ownerId === user.userId),
  },
};

for (const driver of serverDrivers) {
  describe(`phantom tombstones [${driver}]`, () => {
    async function stampsOf(t: { external: (q: string, p?: unknown[]) => Promise<unknown[]> }, id: string) {
      return t.external('SELECT deleted FROM _syncline_stamps WHERE pk = $1::jsonb', [
        JSON.stringify({ id }),
      ]);
    }

    /** A server where Bob has a row (`bobs`) of `target`, Mallory is connected, and `free` is a key no one wrote. */
    async function bobsRowAndMallory(target: typeof notes | typeof memos) {
      const t = await startTestServer(phantomSchema, { driver, rules });
      const bob = await connectUser(t, 'bob');
      const mallory = await connectUser(t, 'mallory');
      const [bobs, free] = [randomUUID(), randomUUID()];
      expect((await bob.push(insertOf(target, { id: bobs, owner_id: 'bob', body: 'b' }))).status).toBe(
        'applied',
      );
      return { t, bob, mallory, bobs, free };
    }

    it("a delete of a key no one wrote stores nothing, and another user's later insert of it is kept", async () => {
      const t = await startTestServer(phantomSchema, { driver, rules });
      const mallory = await connectUser(t, 'mallory');
      const ann = await connectUser(t, 'ann');
      const annElsewhere = await connectUser(t, 'ann', ['notes']);
      const id = randomUUID();

      // Stamped 50 s ahead: as a tombstone it would beat every insert of the next 50 s. The ack
      // carries the row as the server has it (none), as for any change that took no effect.
      expect(await mallory.push(deleteOf(notes, id, stampIn(50_000)))).toEqual({
        mutationId: 1,
        status: 'applied',
        rows: [{ table: 'notes', pk: { id }, row: null }],
      });
      expect(await stampsOf(t, id)).toEqual([]);

      expect(await ann.push(insertOf(notes, { id, owner_id: 'ann', body: 'mine' }))).toEqual({
        mutationId: 1,
        status: 'applied',
      });
      expect(await t.external('SELECT id, owner_id, body FROM notes')).toEqual([
        { id, owner_id: 'ann', body: 'mine' },
      ]);
      await changeReaches(annElsewhere.client, id);
    });

    it('a tombstone left for a row that never existed loses to any insert, whatever its stamp', async () => {
      const t = await startTestServer(phantomSchema, { driver, rules });
      const ann = await connectUser(t, 'ann');
      const annElsewhere = await connectUser(t, 'ann', ['notes']);
      const id = randomUUID();
      // What an older server stored for a pushed delete of a missing key: a tombstone, no image.
      await t.external(
        `INSERT INTO _syncline_stamps (table_name, pk, deleted) VALUES ('notes', $1::jsonb, $2)`,
        [JSON.stringify({ id }), stampIn(55_000)],
      );

      expect(await ann.push(insertOf(notes, { id, owner_id: 'ann', body: 'mine' }))).toEqual({
        mutationId: 1,
        status: 'applied',
      });
      expect(await t.external('SELECT body FROM notes WHERE id = $1', [id])).toEqual([{ body: 'mine' }]);
      await changeReaches(annElsewhere.client, id);
      expect(await stampsOf(t, id)).toEqual([{ deleted: null }]);
    });

    it('a delete of a deleted row is asked about the row it deleted, so no one else can move its tombstone', async () => {
      const t = await startTestServer(phantomSchema, { driver, rules });
      const bob = await connectUser(t, 'bob');
      const bobElsewhere = await connectUser(t, 'bob', ['notes']);
      const mallory = await connectUser(t, 'mallory');
      const id = randomUUID();
      const row = { id, owner_id: 'bob', body: 'first' };
      expect((await bob.push(insertOf(notes, row))).status).toBe('applied');
      expect((await bob.push(deleteOf(notes, id))).status).toBe('applied');

      const moved = await mallory.push(deleteOf(notes, id, stampIn(50_000)));
      expect(moved).toMatchObject({
        status: 'rejected',
        reason: `notes: the write rule refused the delete of row {"id":"${id}"}`,
        rows: [{ table: 'notes', pk: { id }, row: null }],
      });

      // Bob brings his note back at once: his insert is newer than his own delete, and wins.
      expect(await bob.push(insertOf(notes, { ...row, body: 'again' }))).toEqual({
        mutationId: 3,
        status: 'applied',
      });
      expect(await t.external('SELECT body FROM notes WHERE id = $1', [id])).toEqual([{ body: 'again' }]);
      await changeReaches(bobElsewhere.client, id);
    });

    it('a writeChange rule is asked about a delete of a missing key, and its refusal reads as for a row of someone else', async () => {
      const { t, bob, mallory, bobs, free } = await bobsRowAndMallory(memos);

      const ofBob = await mallory.push(deleteOf(memos, bobs, stampIn(50_000)));
      const ofNobody = await mallory.push(deleteOf(memos, free, stampIn(50_000)));
      expect(refusal(ofBob, [bobs])).toBe('memos: the write rule refused the delete of row {"id":"<key>"}');
      expect(refusal(ofNobody, [free])).toBe(refusal(ofBob, [bobs]));
      expect([ofBob, ofNobody].map((r) => r.status === 'rejected' && r.rows[0]!.row)).toEqual([null, null]);
      expect(await stampsOf(t, free)).toEqual([]);

      // Bob, who owns the row, still deletes it; and inserts the free key.
      expect((await bob.push(deleteOf(memos, bobs))).status).toBe('applied');
      expect((await bob.push(insertOf(memos, { id: free, owner_id: 'bob', body: 'f' }))).status).toBe(
        'applied',
      );
      expect(await t.external('SELECT id FROM memos')).toEqual([{ id: free }]);
    });

    for (const [name, target] of [
      ['write(user, row, op)', notes],
      ['writeChange(user, { before, after, op })', memos],
    ] as const) {
      it(`a refused insert reads the same whether the key is another user's row or free (${name})`, async () => {
        const { t, mallory, bobs, free } = await bobsRowAndMallory(target);

        // The insert of Bob's key is an update of his row on the server: it must not say so.
        const taken = await mallory.push(insertOf(target, { id: bobs, owner_id: 'bob', body: 'x' }));
        const untaken = await mallory.push(insertOf(target, { id: free, owner_id: 'bob', body: 'x' }));
        expect(refusal(taken, [bobs])).toBe(
          `${target.$name}: the write rule refused the insert of row {"id":"<key>"}`,
        );
        expect(refusal(untaken, [free])).toBe(refusal(taken, [bobs]));
        expect([taken, untaken].map((r) => r.status === 'rejected' && r.rows[0]!.row)).toEqual([null, null]);
        expect(await t.external(`SELECT body FROM ${target.$name}`)).toEqual([{ body: 'b' }]);
      });
    }
  });
}
