import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import type { LogEntry } from '../../src/sync/server/index.js';
import { RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';
import { abuseSchema, legitimatePair, notePush, notesHello } from './legitimate-clients.js';

/**
 * A client that sends without reading cannot make the server hold its replies or its requests
 * without bound: replies stop at `maxBufferedBytes` unread (the client is closed), requests queue
 * one push and a few pings deep, and `maxProtocolErrors` refused messages close the connection.
 */

type Test = Awaited<ReturnType<typeof startTestServer<typeof abuseSchema>>>;

/** A signed-in client of user `flooder` that has stopped reading. */
async function flooder(t: Test, clientId = randomUUID()): Promise<RawClient> {
  const client = await RawClient.connect(t.url);
  await client.sync(await notesHello(t, 'flooder', clientId));
  client.socket.pause();
  return client;
}

/** Sends `make(i)` up to `max` times, yielding every 1,000, until `stop()` says so. */
async function flood(client: RawClient, max: number, make: (i: number) => string, stop: () => boolean) {
  for (let i = 0; i < max && !stop(); i++) {
    if (client.socket.readyState !== client.socket.OPEN) return;
    client.send(make(i));
    if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
  }
}

function logged(entries: LogEntry[], event: string): () => boolean {
  return () => entries.some((e) => e.event === event);
}

for (const driver of serverDrivers) {
  describe(`backpressure [${driver}]`, () => {
    async function server(limits: Record<string, number> = {}) {
      const entries: LogEntry[] = [];
      const t = await startTestServer(abuseSchema, {
        driver,
        limits,
        log: { level: 'info', sink: (entry) => entries.push(entry) },
      });
      return { t, entries, legit: await legitimatePair(t) };
    }

    it('closes a client after maxProtocolErrors invalid messages', async () => {
      const { t, entries, legit } = await server();
      const client = await flooder(t);
      const closed = logged(entries, 'connection.too_many_errors');
      await flood(client, 20_000, (i) => `not json ${i}`, closed);
      await waitFor(closed, 10_000, 'the flooder to be closed');
      expect(entries.find((e) => e.event === 'connection.too_many_errors')!.message).toMatch(
        /malformed_json/,
      );
      await waitFor(() => t.server.connections === 2, 10_000, 'the flooder to be let go');
      await legit.check();
    });

    it('reads nothing more from a client once it is closed, however much it already sent', async () => {
      const { t, entries, legit } = await server();
      for (let round = 0; round < 3; round++) {
        const client = await flooder(t);
        // All sent at once, so the server holds thousands of messages past the one that closes it:
        // each used to be parsed, refused and logged until the close completed.
        await flood(
          client,
          3000,
          (i) => `not json ${i}`,
          () => false,
        );
        await waitFor(() => t.server.connections === 2, 10_000, 'the flooder to be let go');
      }
      expect(entries.filter((e) => e.event === 'connection.too_many_errors')).toHaveLength(3);
      await legit.check();
    });

    it('closes a client that leaves more than maxBufferedBytes of replies unread', async () => {
      const { t, entries, legit } = await server({
        maxProtocolErrors: 10_000_000,
        maxBufferedBytes: 64 << 10,
      });
      const client = await flooder(t);
      const closed = logged(entries, 'connection.too_slow');
      // Each reply is an error of about 150 bytes: 200,000 of them are far past the socket buffers.
      await flood(client, 200_000, (i) => `not json ${i}`, closed);
      await waitFor(closed, 10_000, 'the flooder to be closed');
      const entry = entries.find((e) => e.event === 'connection.too_slow')!;
      expect(entry.message).toMatch('read too slowly: over 65536 bytes unread');
      await waitFor(() => t.server.connections === 2, 10_000, 'the flooder to be let go');
      await legit.check();
    });

    it('answers a few pings at once and closes a client that floods them', async () => {
      const { t, entries, legit } = await server();
      const client = await flooder(t);
      const closed = logged(entries, 'connection.too_many_errors');
      await flood(
        client,
        20_000,
        (i) => JSON.stringify({ type: 'ping', v: PROTOCOL_VERSION, id: `p${i}` }),
        closed,
      );
      await waitFor(closed, 10_000, 'the flooder to be closed');
      expect(entries.find((e) => e.event === 'connection.too_many_errors')!.message).toMatch(
        /too_many_requests: too many ping messages unanswered/,
      );
      await legit.check();
    });

    it('queues one push behind the one applied, and closes a client that floods them', async () => {
      const { t, entries, legit } = await server();
      const clientId = randomUUID();
      const client = await flooder(t, clientId);
      const push = (i: number) => JSON.stringify(notePush(clientId, i + 1, randomUUID(), 'flooder'));
      const closed = logged(entries, 'connection.too_many_errors');
      await flood(client, 300, push, closed);
      await waitFor(closed, 10_000, 'the flooder to be closed');
      await waitFor(() => t.server.connections === 2, 10_000, 'the flooder to be let go');
      // Refused pushes are not queued: far fewer than were sent were applied.
      const [{ n }] = await t.external(`SELECT count(*)::int AS n FROM notes WHERE owner_id = 'flooder'`);
      expect(n).toBeLessThan(150);
      await legit.check();
    });
  });
}
