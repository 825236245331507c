import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeHlc, encodeHlc, HLC_MAX_COUNTER } from '../../src/sync/protocol/hlc.js';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import type { SyncRules } from '../../src/sync/server/rules.js';
import { RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { abuseSchema, legitimatePair, notesHello } from './legitimate-clients.js';

/**
 * Issue 17, point 1: a stamp from a client must never make the server refuse anyone else. A batch
 * stamped 59 s ahead with the counter nearly full, refused by the write rule, used to merge into
 * the server's clock anyway; the counter then overflowed and every handshake failed with
 * server_error for about a minute, and other users' legal writes were rolled back.
 */

const rules: SyncRules<typeof abuseSchema> = {
  notes: { read: () => true, write: (user, row) => row.ownerId === user.userId },
  bulk: { read: () => false },
};

/** A push of one note owned by `owner`, stamped `aheadMs` ahead with `counter`. */
function pushNote(clientId: string, mutationId: number, owner: string, aheadMs: number, counter: number) {
  const id = randomUUID();
  return {
    type: 'push',
    v: PROTOCOL_VERSION,
    batches: [
      {
        mutationId,
        changes: [
          {
            table: 'notes',
            op: 'insert',
            pk: { id },
            values: { id, owner_id: owner, body: 'from the future' },
            hlc: encodeHlc({ wallMs: Date.now() + aheadMs, counter, nodeId: clientId }),
          },
        ],
      },
    ],
  };
}

for (const driver of serverDrivers) {
  describe(`a client's stamps cannot freeze the server's clock [${driver}]`, () => {
    it('a refused batch 59 s ahead with a full counter moves nothing, and everyone else goes on', async () => {
      const t = await startTestServer(abuseSchema, { driver, rules });
      const legit = await legitimatePair(t);
      const malloryId = randomUUID();
      const mallory = await RawClient.connect(t.url);
      await mallory.sync(await notesHello(t, 'mallory', malloryId));
      for (let i = 1; i <= 3; i++) {
        mallory.send(pushNote(malloryId, i, 'alice', 59_000, HLC_MAX_COUNTER - 1));
        const ack = await mallory.nextOf('ack');
        expect(ack.results[0]).toMatchObject({ mutationId: i, status: 'rejected' });
      }
      // A new handshake is welcomed, with a server stamp of about now, not 59 s ahead.
      const newcomer = await RawClient.connect(t.url);
      const before = Date.now();
      const { welcome } = await newcomer.sync(await notesHello(t, 'carol'));
      expect(decodeHlc(String(welcome.hlc)).wallMs).toBeLessThan(before + 30_000);
      // Others' legal writes are applied and reach the others.
      await legit.check();
      // A direct write is stamped from the database's clock, as the refused batch never committed.
      const id = randomUUID();
      await t.external('INSERT INTO notes (id, owner_id, body) VALUES ($1, $2, $3)', [
        id,
        'backend',
        'direct',
      ]);
      const [row] = await t.external(
        `SELECT created FROM _syncline_stamps WHERE table_name = 'notes' AND pk = jsonb_build_object('id', $1::text)`,
        [id],
      );
      expect(decodeHlc(String(row!.created)).wallMs).toBeLessThan(Date.now() + 30_000);
    });

    it('an applied batch 59 s ahead with the counter full carries over instead of failing anyone', async () => {
      const t = await startTestServer(abuseSchema, { driver, rules });
      const legit = await legitimatePair(t);
      const malloryId = randomUUID();
      const mallory = await RawClient.connect(t.url);
      await mallory.sync(await notesHello(t, 'mallory', malloryId));
      mallory.send(pushNote(malloryId, 1, 'mallory', 59_000, HLC_MAX_COUNTER));
      expect((await mallory.nextOf('ack')).results[0]).toMatchObject({ status: 'applied' });
      // The server's clock now runs at the batch's stamp: handshakes still get a stamp after it.
      const newcomer = await RawClient.connect(t.url);
      const { welcome } = await newcomer.sync(await notesHello(t, 'carol'));
      expect(String(welcome.hlc) > encodeHlc({ wallMs: Date.now() + 58_000, counter: 0, nodeId: 'a' })).toBe(
        true,
      );
      await legit.check();
      // Other users' writes stamped from their own, sound clocks are applied.
      const aliceId = randomUUID();
      const alice = await RawClient.connect(t.url);
      await alice.sync(await notesHello(t, 'alice', aliceId));
      alice.send(pushNote(aliceId, 1, 'alice', 0, 0));
      expect((await alice.nextOf('ack')).results[0]).toMatchObject({ status: 'applied' });
    });
  });
}
