import { get } from 'node:http';
import { describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { createSyncServer, type LogEntry, SYNC_CLOSE_CODES } from '../../src/sync/server/index.js';
import { appSchema, lists } from '../support/fixtures.js';
import { helloMessage, RawClient, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * The server as a process: options checked up front with messages that say what to change, a
 * limit on connections, structured logs that stay quiet by default, and a graceful shutdown that
 * tells every client why it was closed.
 */

describe('sync server lifecycle', () => {
  it('refuses connections past maxConnections with HTTP 503, and takes them again once one closes', async () => {
    const t = await startTestServer(appSchema, { limits: { maxConnections: 2 } });
    // Only signed-in connections count (test/security/unauthenticated.test.ts).
    const signedIn = async () => {
      const client = await RawClient.connect(t.url);
      client.send(helloMessage(appSchema, { token: await t.token('u1') }));
      await client.next('welcome');
      return client;
    };
    const first = await signedIn();
    await signedIn();
    await expect(RawClient.connect(t.url)).rejects.toThrow('the server answered the upgrade with HTTP 503');
    await first.close();
    await waitFor(() => t.server.connections === 1, 5000, 'the closed connection to be let go');
    const third = await RawClient.connect(t.url);
    third.send(helloMessage(appSchema, { token: await t.token('u1') }));
    await third.next('welcome');
  });

  it('answers other paths with 404 and plain HTTP with 426', async () => {
    const t = await startTestServer(appSchema);
    await expect(RawClient.connect(t.url.replace('/sync', '/other'))).rejects.toThrow('HTTP 404');
    const status = await new Promise<number>((resolve, reject) => {
      get(t.url.replace('ws://', 'http://'), (response) => {
        response.resume();
        resolve(response.statusCode!);
      }).on('error', reject);
    });
    expect(status).toBe(426);
  });

  it('closes every client with 1001 and the reason on close(), and close() twice is fine', async () => {
    const t = await startTestServer(appSchema);
    const client = await RawClient.connect(t.url);
    await client.sync(
      helloMessage(appSchema, { token: await t.token('u1'), shapes: [{ id: 'l', table: 'lists' }] }),
    );
    const waiting = await RawClient.connect(t.url); // still in its handshake
    await Promise.all([t.server.close({ reason: 'maintenance, back soon' }), t.server.close()]);
    expect(await client.closed).toEqual({
      code: SYNC_CLOSE_CODES.goingAway,
      reason: 'maintenance, back soon',
    });
    expect((await waiting.closed).code).toBe(SYNC_CLOSE_CODES.goingAway);
    await expect(RawClient.connect(t.url)).rejects.toThrow();
    await expect(t.server.db.select().from(lists)).rejects.toThrow(/database is closed/);
  });

  it('logs structured entries at the level asked for, and warns when there are no rules', async () => {
    const entries: LogEntry[] = [];
    const t = await startTestServer(appSchema, { log: { level: 'info', sink: (e) => entries.push(e) } });
    expect(entries[0]).toMatchObject({
      level: 'warn',
      event: 'rules.missing',
      message: expect.stringMatching(/every authenticated user may read and write every synced table/),
    });
    const client = await RawClient.connect(t.url);
    await client.sync(
      helloMessage(appSchema, { token: await t.token('u7'), shapes: [{ id: 'l', table: 'lists' }] }),
    );
    const refused = await RawClient.connect(t.url);
    refused.send(helloMessage(appSchema, { token: 'nope' }));
    await refused.closed;
    await client.close();
    await waitFor(() => entries.some((e) => e.event === 'connection.closed'), 5000, 'the disconnect entry');
    const events = entries.map((e) => e.event);
    expect(events).toEqual(
      expect.arrayContaining([
        'server.listening',
        'snapshot.sent',
        'connection.live',
        'connection.auth_failed',
      ]),
    );
    expect(entries.find((e) => e.event === 'connection.live')).toMatchObject({ userId: 'u7', level: 'info' });
    expect(entries.every((e) => e.level !== 'debug' && !Number.isNaN(Date.parse(e.time)))).toBe(true);
  });

  it('checks its options before touching the database, saying what to give instead', async () => {
    const base = { schema: appSchema, auth: { jwtSecret: 'x'.repeat(32) } };
    await expect(createSyncServer({ ...base, database: sqlite() })).rejects.toThrow(
      /database must be a PostgreSQL driver: postgres\(\{ connectionString \}\) .* or pglite/,
    );
    const database = pglite();
    await expect(createSyncServer({ ...base, database, auth: {} as never })).rejects.toThrow(
      'auth takes exactly one of jwtSecret, jwksUrl or authenticate',
    );
    await expect(createSyncServer({ ...base, database, auth: { jwtSecret: '' } })).rejects.toThrow(
      'auth.jwtSecret is empty',
    );
    await expect(createSyncServer({ ...base, database, limits: { maxConnections: 0 } })).rejects.toThrow(
      'limits.maxConnections must be a whole number of at least 1, got 0',
    );
    await expect(createSyncServer({ ...base, database, path: 'sync' })).rejects.toThrow(
      'path must start with "/"',
    );
    await expect(createSyncServer({ ...base, database, log: { level: 'loud' as never } })).rejects.toThrow(
      'unknown log level "loud"; use one of silent, error, warn, info, debug',
    );
    await expect(createSyncServer({ ...base, database, rules: { notes: {} } as never })).rejects.toThrow(
      /"notes" is not a table of the schema/,
    );
  });

  it('authenticates with a custom function given the request', async () => {
    const t = await startTestServer(appSchema, {
      auth: {
        authenticate: ({ token, headers }) =>
          token === 'open sesame'
            ? { userId: String(headers['x-user'] ?? 'anon'), role: 'tester' }
            : undefined,
      },
    });
    const ok = await RawClient.connect(t.url, { 'x-user': 'u5' });
    ok.send(helloMessage(appSchema, { token: 'open sesame' }));
    await ok.next('welcome');
    const refused = await RawClient.connect(t.url);
    refused.send(helloMessage(appSchema, { token: 'wrong' }));
    expect(await refused.next('error')).toMatchObject({
      code: 'auth_failed',
      message: 'authentication failed: the token was refused by the server',
    });
  });
});
