import { describe, expect, it } from 'vitest';
import { eq } from '../../src/index.js';
import { filterToJson } from '../../src/sync/protocol/filter-tree.js';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import { RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { abuseSchema, bulk, legitimatePair, notes, notesHello, seedBulk } from './legitimate-clients.js';

/**
 * `subscribe` and `unsubscribe` from a hostile client: every bad one is refused with a non-fatal
 * error naming the shape (unknown tables and columns, the read rules, ids in use, too many
 * shapes, too many at once), a flood of them is bounded like other requests, and a legitimate
 * client on the same server keeps syncing meanwhile.
 */

const subscribe = (shape: object) => ({ type: 'subscribe', v: PROTOCOL_VERSION, shape });

for (const driver of serverDrivers) {
  describe(`subscriptions from a hostile client [${driver}]`, () => {
    it('refuses bad subscribes and unsubscribes with a clear error and goes on', async () => {
      const t = await startTestServer(abuseSchema, {
        driver,
        limits: { maxShapes: 3 },
        rules: { notes: { read: () => true, write: () => true } },
      });
      const legit = await legitimatePair(t);
      const client = await RawClient.connect(t.url);
      await client.sync(await notesHello(t, 'mallory'));
      const cases: [object, string, RegExp][] = [
        [
          subscribe({ id: 'x', table: 'nope' }),
          'unknown_table',
          /shape\.table: table "nope" is not in the schema/,
        ],
        [
          subscribe({ id: 'x', table: 'notes', where: { op: 'eq', column: 'secret', value: 1 } }),
          'unknown_column',
          /secret/,
        ],
        [
          subscribe({ id: 'x', table: 'bulk' }),
          'forbidden',
          /read rules do not let user "mallory" read table "bulk"/,
        ],
        [subscribe({ id: 'notes', table: 'notes' }), 'invalid_message', /shape id "notes" is already in use/],
        [{ type: 'unsubscribe', v: PROTOCOL_VERSION, shapeId: 'ghost' }, 'unknown_shape', /"ghost"/],
      ];
      for (const [message, code, text] of cases) {
        client.send(message);
        const error = await client.nextOf('error');
        expect(error).toMatchObject({ code, fatal: false });
        expect(error.message).toMatch(text);
        if ('shape' in message) expect(error.shapeId).toBe((message.shape as { id: string }).id);
      }
      // Two more fit under maxShapes (3, the hello's included); the next does not.
      for (const id of ['a', 'b']) {
        client.send(subscribe({ id, table: 'notes', where: filterToJson(eq(notes.ownerId, id), notes) }));
        expect(await client.nextOf('snapshot')).toMatchObject({ shapeId: id, last: true });
      }
      client.send(subscribe({ id: 'c', table: 'notes' }));
      expect(await client.nextOf('error')).toMatchObject({ code: 'too_large', shapeId: 'c' });
      client.send({ type: 'unsubscribe', v: PROTOCOL_VERSION, shapeId: 'a' });
      expect(await client.nextOf('unsubscribed')).toMatchObject({ shapeId: 'a' });
      expect((await client.ping('alive')).id).toBe('alive');
      await legit.check();
    });

    it('bounds a burst of subscribes: at most four wait, the rest are refused', async () => {
      const t = await startTestServer(abuseSchema, { driver, limits: { snapshotChunkRows: 10 } });
      await seedBulk(t, 2000, 200);
      const legit = await legitimatePair(t);
      const client = await RawClient.connect(t.url);
      await client.sync(await notesHello(t, 'mallory'));
      // 60 subscribes of 400 KB each at once: at most four wait at a time, the rest are refused.
      for (let i = 0; i < 60; i++) client.send(subscribe({ id: `s${i}`, table: bulk.$name }));
      await legit.check();
      // Each subscribe is answered: a refusal, or a snapshot (whose last chunk ends it).
      let refused = 0;
      let added = 0;
      while (refused + added < 60) {
        const message = await client.next(undefined, 30_000);
        if (message.type === 'error') {
          expect(message.code).toBe('too_many_requests');
          refused++;
        } else if (message.type === 'snapshot' && message.last) added++;
      }
      // The burst arrives faster than snapshots finish: most are refused, not queued.
      expect(refused).toBeGreaterThan(30);
      await legit.check();
      await client.close();
      await legit.check();
    }, 60_000);
  });
}
