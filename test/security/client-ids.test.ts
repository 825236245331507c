import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SYNC_CLOSE_CODES } from '../../src/sync/server/index.js';
import { RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { abuseSchema, legitimatePair, notePush, notesHello } from './legitimate-clients.js';

/**
 * A client id belongs to the user who first pushed with it. Another user who says hello with it
 * is refused before `welcome`, which would tell them its last mutation id (and let them pose as
 * that client); the owner keeps syncing under it.
 */

for (const driver of serverDrivers) {
  describe(`client ids [${driver}]`, () => {
    it("refuses another user's client id at the handshake, before welcome", async () => {
      const t = await startTestServer(abuseSchema, { driver });
      const legit = await legitimatePair(t);
      const clientId = randomUUID();
      const alice = await RawClient.connect(t.url);
      await alice.sync(await notesHello(t, 'alice', clientId));
      alice.send(notePush(clientId, 1, randomUUID(), 'alice'));
      expect((await alice.nextOf('ack')).results[0]).toMatchObject({ mutationId: 1, status: 'applied' });

      const mallory = await RawClient.connect(t.url);
      mallory.send(await notesHello(t, 'mallory', clientId));
      const error = await mallory.next('error');
      expect(error).toMatchObject({ code: 'forbidden', fatal: true });
      expect(error.message).toMatch(/belongs to another user/);
      expect((await mallory.closed).code).toBe(SYNC_CLOSE_CODES.forbidden);
      expect(mallory.received.map((m) => m.type)).toEqual(['error']);

      // The owner goes on under its id, and so does everyone else.
      alice.send(notePush(clientId, 2, randomUUID(), 'alice'));
      expect((await alice.nextOf('ack')).results[0]).toMatchObject({ mutationId: 2, status: 'applied' });
      const again = await RawClient.connect(t.url);
      const { welcome } = await again.sync(await notesHello(t, 'alice', clientId));
      expect(welcome.lastMutationId).toBe(2);
      await legit.check();
    });
  });
}
