import { describe, expect, it } from 'vitest';
import { eq, sql } from '../../src/index.js';
import { filterToJson } from '../../src/sync/protocol/filter-to-json.js';
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

    it('bounds a burst of subscribes: four wait, the rest are refused', async () => {
      const t = await startTestServer(abuseSchema, { driver, limits: { snapshotChunkRows: 10 } });
      await seedBulk(t, 2000, 200);
      const legit = await legitimatePair(t);
      const client = await RawClient.connect(t.url);
      await client.sync(await notesHello(t, 'mallory'));
      // While the server's snapshots cannot read (the reader state locked), none of the first
      // four subscribes finishes: the other 56 are refused at once, whatever the timing.
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const locking = t.server.db.transaction(async (tx) => {
        await tx.execute(sql`LOCK TABLE _syncline_reader_state IN ACCESS EXCLUSIVE MODE`);
        locked();
        await held;
      });
      await isLocked;
      for (let i = 0; i < 60; i++) client.send(subscribe({ id: `s${i}`, table: bulk.$name }));
      let refused = 0;
      let added = 0;
      try {
        while (refused < 56) {
          const message = await client.next(undefined, 10_000);
          // The cursor moving on past others' writes (the legitimate pair's) may come in between.
          if (message.type === 'changes') continue;
          expect(message.type).toBe('error');
          expect(message).toMatchObject({ code: 'too_many_requests' });
          refused++;
        }
      } finally {
        release();
        await locking;
      }
      // Then the four are answered with their snapshots.
      while (added < 4) {
        const message = await client.next(undefined, 30_000);
        if (message.type === 'snapshot' && message.last) added++;
        else expect(message.type).not.toBe('error');
      }
      await legit.check();
      await legit.check();
      await client.close();
      await legit.check();
    }, 60_000);
  });
}
