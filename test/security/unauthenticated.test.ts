import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SYNC_CLOSE_CODES } from '../../src/sync/server/index.js';
import { RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';
import { abuseSchema, legitimatePair, notesHello } from './legitimate-clients.js';

/**
 * Sockets that never sign in cannot crowd out users: they are counted apart from
 * `maxConnections`, capped at `maxUnauthenticated` (the one idle longest without a hello makes
 * room for a new one) and closed after `helloTimeoutMs`; and one user cannot take every
 * connection either (`maxConnectionsPerUser`).
 */

/** Opens `count` sockets that never send anything, 50 at a time; the server may close any of them. */
async function idleSockets(url: string, count: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i += 50) {
    const wave = Array.from({ length: Math.min(50, count - i) }, () => {
      const socket = new WebSocket(url);
      socket.on('error', () => {});
      sockets.push(socket);
      return new Promise<void>((resolve) => {
        socket.once('open', () => resolve());
        socket.once('close', () => resolve());
        socket.once('unexpected-response', (_request, response) => {
          socket.terminate();
          resolve(Promise.reject(new Error(`an idle socket was refused with HTTP ${response.statusCode}`)));
        });
      });
    });
    await Promise.all(wave);
  }
  return sockets;
}

function closeAll(sockets: WebSocket[]): void {
  for (const socket of sockets) socket.terminate();
}

for (const driver of serverDrivers) {
  describe(`unauthenticated sockets [${driver}]`, () => {
    it('1,000 sockets that never say hello do not keep a user out', async () => {
      const t = await startTestServer(abuseSchema, { driver, limits: { maxConnections: 1000 } });
      const legit = await legitimatePair(t);
      const idle = await idleSockets(t.url, 1000);
      try {
        // Each new socket took the place of the one idle longest: their count stays at the cap.
        await waitFor(() => t.server.connections <= 2 + 100, 5000, 'the idle sockets to stay at the cap');
        const late = await RawClient.connect(t.url);
        await late.sync(await notesHello(t, 'late-user'));
        await legit.check();
      } finally {
        closeAll(idle);
      }
    });

    it('closes a socket that has not signed in after helloTimeoutMs, even when its hello came', async () => {
      let hang: (() => void) | undefined;
      const t = await startTestServer(abuseSchema, {
        driver,
        limits: { helloTimeoutMs: 300 },
        auth: {
          authenticate: ({ token }) =>
            token === 'hang'
              ? new Promise((resolve) => (hang = () => resolve(undefined)))
              : { userId: token! },
        },
      });
      const legit = await legitimatePair(t);
      const silent = await RawClient.connect(t.url);
      const stuck = await RawClient.connect(t.url);
      stuck.send({ ...(await notesHello(t, 'x')), token: 'hang' });
      for (const client of [silent, stuck]) {
        expect(await client.next('error')).toMatchObject({ code: 'hello_timeout', fatal: true });
        expect((await client.closed).code).toBe(SYNC_CLOSE_CODES.protocolError);
      }
      hang?.();
      await legit.check();
    });

    it('caps the connections of one user, and lets another in meanwhile', async () => {
      const t = await startTestServer(abuseSchema, { driver, limits: { maxConnectionsPerUser: 3 } });
      const legit = await legitimatePair(t);
      const greedy: RawClient[] = [];
      for (let i = 0; i < 3; i++) {
        const client = await RawClient.connect(t.url);
        await client.sync(await notesHello(t, 'greedy'));
        greedy.push(client);
      }
      for (let i = 0; i < 5; i++) {
        const extra = await RawClient.connect(t.url);
        extra.send(await notesHello(t, 'greedy'));
        const error = await extra.next('error');
        expect(error).toMatchObject({ code: 'too_many_connections', fatal: true });
        expect(error.message).toMatch(/user "greedy" has 3 connections open/);
        expect((await extra.closed).code).toBe(SYNC_CLOSE_CODES.tooManyConnections);
      }
      await legit.check();
      await greedy[0]!.close();
      await waitFor(() => t.server.connections === 4, 5000, 'the closed connection to be let go');
      const again = await RawClient.connect(t.url);
      await again.sync(await notesHello(t, 'greedy'));
    });
  });
}
