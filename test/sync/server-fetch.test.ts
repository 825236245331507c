import { describe, expect, it } from 'vitest';
import { eq } from '../../src/index.js';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import type { SyncRules } from '../../src/sync/server/index.js';
import { appSchema, lists } from '../support/fixtures.js';
import { helloMessage, RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';

/**
 * `fetch`: a client asks for the server's current version of rows it could not apply. The answer
 * (`rows`) holds each row asked for, in order, with `row` null where the row is missing or the
 * user may not read it (the read rules apply as to everything else); a bad request is refused with
 * a non-fatal error naming the row, and the connection goes on.
 */

const L1 = '00000000-0000-4000-8000-0000000000a1';
const L2 = '00000000-0000-4000-8000-0000000000b2';
const L3 = '00000000-0000-4000-8000-0000000000c3';

const rules: SyncRules<typeof appSchema> = {
  lists: { read: (user) => eq(lists.ownerId, user.userId) },
};

for (const driver of serverDrivers) {
  describe(`fetch [${driver}]`, () => {
    it('answers with the rows the user may read, null for the others and for missing ones', async () => {
      const t = await startTestServer(appSchema, { driver, rules });
      await t.server.db.insert(lists).values([
        { id: L1, name: 'Mine', ownerId: 'u1' },
        { id: L2, name: 'Theirs', ownerId: 'u2' },
      ]);
      // Read before the client comes, so no changes message (moving its cursor) comes before the answer.
      await t.settled();
      const client = await RawClient.connect(t.url);
      client.send(helloMessage(appSchema, { token: await t.token('u1') }));
      await client.next('welcome');
      client.send({
        type: 'fetch',
        v: PROTOCOL_VERSION,
        id: 'f1',
        rows: [L1, L2, L3].map((id) => ({ table: 'lists', pk: { id } })),
      });
      const answer = await client.next('rows');
      expect(answer.id).toBe('f1');
      expect(answer.rows.map((r) => [r.pk.id, r.row?.name ?? null])).toEqual([
        [L1, 'Mine'],
        [L2, null],
        [L3, null],
      ]);
      expect(answer.rows[0].row).toMatchObject({ id: L1, owner_id: 'u1' });
      await client.close();
    });

    it('refuses an unknown table, a partial key and too many rows, and goes on', async () => {
      const t = await startTestServer(appSchema, { driver });
      const client = await RawClient.connect(t.url);
      client.send(helloMessage(appSchema, { token: await t.token('u1') }));
      await client.next('welcome');
      client.send({ type: 'fetch', v: PROTOCOL_VERSION, rows: [{ table: 'nope', pk: { id: L1 } }] });
      expect((await client.next('error')).message).toMatch(/rows\[0\]: unknown table "nope"/);
      client.send({ type: 'fetch', v: PROTOCOL_VERSION, rows: [{ table: 'lists', pk: { name: 'x' } }] });
      expect((await client.next('error')).message).toMatch(
        /rows\[0\]: lists: the primary key must have exactly the columns id/,
      );
      const many = Array.from({ length: 1001 }, () => ({ table: 'lists', pk: { id: L1 } }));
      client.send({ type: 'fetch', v: PROTOCOL_VERSION, rows: many });
      const tooMany = await client.next('error');
      expect(tooMany.fatal).toBe(false);
      expect(tooMany.message).toMatch(/at most 1000 rows/);
      // Still served.
      client.send({ type: 'fetch', v: PROTOCOL_VERSION, rows: [{ table: 'lists', pk: { id: L1 } }] });
      expect((await client.next('rows')).rows).toEqual([{ table: 'lists', pk: { id: L1 }, row: null }]);
      await client.close();
    });
  });
}
