import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eq, schema, table, text, uuid } from '../../src/index.js';
import { SYNC_CLOSE_CODES } from '../../src/sync/protocol/close-codes.js';
import type { FilterJson } from '../../src/sync/protocol/filter-tree.js';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import { helloMessage, RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { bulk, legitimatePair, notes, notesHello } from './legitimate-clients.js';

/**
 * Shape filters with subqueries from a hostile client: a subquery on an unknown table or column,
 * on a table the read rules hide, on the shape's own table, comparing columns of different types,
 * nested too deep or too big, is refused with a clear error naming the place (non-fatal for a
 * `subscribe`, fatal for a `hello`), and the connection and the other clients go on. A subquery
 * on a table with a read rule sees only the rows the rule admits, so it probes nothing.
 */

const shares = table('shares', {
  id: uuid().primaryKey(),
  noteId: uuid('note_id').notNull(),
  userId: text('user_id').notNull(),
});
/** Tables that point at one another, for subqueries nested several deep. */
const hop = (name: string) => table(name, { id: uuid().primaryKey(), ref: uuid().notNull() });
const subquerySchema = schema(
  { notes, bulk, shares, hop1: hop('hop1'), hop2: hop('hop2'), hop3: hop('hop3') },
  { version: 1 },
);
const open = { read: () => true, write: () => true };

const subscribe = (where: unknown, id = 'x') => ({
  type: 'subscribe',
  v: PROTOCOL_VERSION,
  shape: { id, table: 'notes', where },
});
const sharedWithMe: FilterJson = {
  op: 'inArray',
  column: 'id',
  subquery: { table: 'shares', column: 'note_id', where: { op: 'eq', column: 'user_id', value: 'mallory' } },
};
/** `id IN (SELECT ref FROM hop1 WHERE ref IN (SELECT ref FROM hop2 ...))`, `depth` subqueries deep. */
function nested(depth: number): FilterJson {
  const names = ['hop1', 'hop2', 'hop3', 'shares'];
  let where: FilterJson | undefined;
  for (let i = depth - 1; i >= 0; i--) {
    const column = names[i] === 'shares' ? 'note_id' : 'ref';
    where = {
      op: 'inArray',
      column: i === 0 ? 'id' : 'ref',
      subquery: { table: names[i]!, column, ...(where ? { where } : {}) },
    };
  }
  return where!;
}

for (const driver of serverDrivers) {
  describe(`shape filters with subqueries from a hostile client [${driver}]`, () => {
    it('refuses bad subqueries in a subscribe with a clear error, and goes on', async () => {
      const t = await startTestServer(subquerySchema, {
        driver,
        rules: {
          notes: open,
          shares: { read: (user) => eq(shares.userId, user.userId), write: () => true },
          hop1: open,
          hop2: open,
          hop3: open,
        },
      });
      const legit = await legitimatePair(t);
      const client = await RawClient.connect(t.url);
      await client.sync(await notesHello(t, 'mallory'));
      const wide: FilterJson = {
        op: 'inArray',
        column: 'id',
        subquery: {
          table: 'shares',
          column: 'note_id',
          where: {
            op: 'inArray',
            column: 'user_id',
            values: Array.from({ length: 2000 }, (_, i) => `u${i}`),
          },
        },
      };
      let deep: FilterJson = { op: 'isNull', column: 'user_id' };
      for (let i = 0; i < 20; i++) deep = { op: 'not', arg: deep };
      const cases: [unknown, string, RegExp][] = [
        [
          { op: 'exists', subquery: { table: 'nope' } },
          'unknown_table',
          /^shape\.where\.subquery\.table: table "nope" is not in the schema; the synced tables are notes, bulk, shares/,
        ],
        [
          { op: 'inArray', column: 'id', subquery: { table: 'shares', column: 'secret' } },
          'unknown_column',
          /^shape\.where\.subquery\.column: table "shares" has no column "secret"; its columns are id, note_id, user_id/,
        ],
        [
          {
            op: 'exists',
            subquery: {
              table: 'shares',
              where: { op: 'eq', column: 'note_id', outer: { table: 'notes', column: 'nope' } },
            },
          },
          'unknown_column',
          /subquery\.where\.outer\.column: table "notes" has no column "nope"/,
        ],
        [
          { op: 'exists', subquery: { table: 'bulk' } },
          'forbidden',
          /^shape\.where\.subquery\.table: the read rules do not let this user read table "bulk", so a filter cannot read it either/,
        ],
        [
          { op: 'inArray', column: 'id', subquery: { table: 'notes', column: 'id' } },
          'invalid_filter',
          /subquery\.table: the subquery reads "notes", which the filter around it reads already/,
        ],
        [
          { op: 'inArray', column: 'id', subquery: { table: 'shares', column: 'user_id' } },
          'invalid_filter',
          /inArray compares notes\.id \(uuid\) with shares\.user_id \(text\); compare columns of the same type/,
        ],
        [
          { op: 'eq', column: 'id', outer: { table: 'shares', column: 'id' } },
          'invalid_filter',
          /shape\.where\.outer\.table: "shares" is not a table around this condition; outer columns can only be used inside a subquery/,
        ],
        [
          {
            op: 'exists',
            subquery: {
              table: 'shares',
              where: { op: 'eq', column: 'user_id', outer: { table: 'bulk', column: 'body' } },
            },
          },
          'invalid_filter',
          /outer\.table: "bulk" is not a table around this condition; the tables around this subquery are "notes"/,
        ],
        [nested(4), 'too_large', /nests subqueries deeper than 3 \(the maxSubqueryDepth limit\)/],
        [wide, 'too_large', /more than 1000 nodes \(the maxNodes limit/],
        [
          { op: 'exists', subquery: { table: 'shares', where: deep } },
          'too_large',
          /nests and\/or\/not deeper than 16 levels \(the maxDepth limit\); a subquery counts as a level/,
        ],
        [
          { op: 'exists', subquery: { table: 'shares', column: 'id' } },
          'invalid_message',
          /unknown field "column"/,
        ],
      ];
      for (const [where, code, text] of cases) {
        client.send(subscribe(where));
        const error = await client.nextOf('error');
        expect(error, JSON.stringify(where).slice(0, 200)).toMatchObject({ code, fatal: false });
        // A message of the wrong structure is refused before its shape is read.
        if (code !== 'invalid_message') expect(error.shapeId).toBe('x');
        expect(error.message).toMatch(text);
      }
      // Still connected and served: a good subquery shape, three deep, is added.
      client.send(subscribe(nested(3), 'deep-enough'));
      expect(await client.nextOf('snapshot')).toMatchObject({ shapeId: 'deep-enough', last: true });
      expect((await client.ping('alive')).id).toBe('alive');
      await legit.check();
    });

    it("a subquery sees only the rows the subquery table's read rule admits", async () => {
      const t = await startTestServer(subquerySchema, {
        driver,
        rules: { notes: open, shares: { read: (user) => eq(shares.userId, user.userId), write: () => true } },
      });
      const [mine, theirs] = [randomUUID(), randomUUID()];
      await t.server.db.insert(notes).values([
        { id: mine, ownerId: 'x', body: 'mine' },
        { id: theirs, ownerId: 'x', body: 'theirs' },
      ]);
      await t.server.db.insert(shares).values([
        { id: randomUUID(), noteId: mine, userId: 'mallory' },
        { id: randomUUID(), noteId: theirs, userId: 'victim' },
      ]);
      const client = await RawClient.connect(t.url);
      await client.sync(await notesHello(t, 'mallory'));
      // "Notes some share exists for": the victim's share is hidden from the subquery too.
      client.send(
        subscribe(
          {
            op: 'exists',
            subquery: {
              table: 'shares',
              where: { op: 'eq', column: 'note_id', outer: { table: 'notes', column: 'id' } },
            },
          },
          'shared',
        ),
      );
      const probe = await client.nextOf('snapshot');
      expect(probe).toMatchObject({ shapeId: 'shared', last: true });
      expect(probe.rows.map((r) => r.id)).toEqual([mine]);
      // The negation cannot find it either: every note but hers.
      client.send(
        subscribe(
          { op: 'notInArray', column: 'id', subquery: { table: 'shares', column: 'note_id' } },
          'unshared',
        ),
      );
      const negated = await client.nextOf('snapshot');
      expect(negated.rows.map((r) => r.id)).toEqual([theirs]);
    });

    it('closes a hello whose shape reads a forbidden table, and the others go on', async () => {
      const t = await startTestServer(subquerySchema, { driver, rules: { notes: open } });
      const legit = await legitimatePair(t);
      const client = await RawClient.connect(t.url);
      client.send(
        helloMessage(subquerySchema, {
          clientId: randomUUID(),
          token: await t.token('mallory'),
          shapes: [{ id: 'notes', table: 'notes', where: sharedWithMe }],
        }),
      );
      const error = await client.nextOf('error');
      expect(error).toMatchObject({ code: 'forbidden', fatal: true });
      expect(error.message).toMatch(
        /^shapes\[0\]\.where\.subquery\.table: the read rules do not let this user read table "shares"/,
      );
      expect((await client.closed).code).toBe(SYNC_CLOSE_CODES.forbidden);
      await legit.check();
    });
  });
}
