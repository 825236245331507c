import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { openDatabase } from '../../src/index.js';
import { syncClient } from '../../src/sync/client/index.js';
import { createSyncServer, SYNC_CLOSE_CODES } from '../../src/sync/server/index.js';
import { RawClient, serverDrivers, startTestServer, TEST_JWT_SECRET } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';
import { abuseSchema, legitimatePair, notePush, notes, notesHello } from './legitimate-clients.js';

/**
 * Tokens are checked for what makes them safe, not only for their signature: they must expire,
 * they stop working on an open connection when they do (the client then gets a new one and
 * reconnects, losing nothing), the secret must be long enough not to be guessed, and they travel
 * in `hello`, not in a URL that ends up in logs.
 */

const key = new TextEncoder().encode(TEST_JWT_SECRET);

/** A token for `userId` that expires at `exp` (seconds since the epoch; none when undefined). */
function tokenFor(userId: string, exp?: number): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt();
  if (exp !== undefined) jwt.setExpirationTime(exp);
  return jwt.sign(key);
}

/** Seconds since the epoch, `ahead` seconds from now (the token then lasts `ahead` - 1 to `ahead` s). */
const inSeconds = (ahead: number) => Math.floor(Date.now() / 1000) + ahead;

describe('token rules checked when the server starts', () => {
  it('refuses an HS256 secret under 32 bytes', async () => {
    const database = pglite();
    for (const jwtSecret of ['k', 'x'.repeat(31), 'é'.repeat(15)]) {
      await expect(createSyncServer({ schema: abuseSchema, database, auth: { jwtSecret } })).rejects.toThrow(
        /auth\.jwtSecret is \d+ bytes long; an HS256 secret needs at least 32 bytes/,
      );
    }
    await database.close();
  });
});

for (const driver of serverDrivers) {
  describe(`tokens [${driver}]`, () => {
    it('refuses a token without exp, unless auth.requireExp is false', async () => {
      const t = await startTestServer(abuseSchema, { driver });
      const legit = await legitimatePair(t);
      const client = await RawClient.connect(t.url);
      client.send({ ...(await notesHello(t, 'u1')), token: await tokenFor('u1') });
      const error = await client.next('error');
      expect(error).toMatchObject({ code: 'auth_failed', fatal: true });
      expect(error.message).toMatch(/the token has no "exp" claim: tokens must expire/);
      expect((await client.closed).code).toBe(SYNC_CLOSE_CODES.authFailed);
      await legit.check();

      const lax = await startTestServer(abuseSchema, {
        driver,
        auth: { jwtSecret: TEST_JWT_SECRET, requireExp: false },
      });
      const allowed = await RawClient.connect(lax.url);
      await allowed.sync({ ...(await notesHello(lax, 'u1')), token: await tokenFor('u1') });
    });

    it('takes a token from the URL only with auth.allowTokenInUrl', async () => {
      const t = await startTestServer(abuseSchema, { driver });
      const legit = await legitimatePair(t);
      const token = await t.token('u1');
      const byUrl = await RawClient.connect(`${t.url}?token=${encodeURIComponent(token)}`);
      byUrl.send({ ...(await notesHello(t, 'u1')), token: undefined });
      expect(await byUrl.next('error')).toMatchObject({ code: 'auth_failed', fatal: true });
      await legit.check();

      const open = await startTestServer(abuseSchema, {
        driver,
        auth: { jwtSecret: TEST_JWT_SECRET, allowTokenInUrl: true },
      });
      const allowed = await RawClient.connect(`${open.url}?token=${encodeURIComponent(token)}`);
      await allowed.sync({ ...(await notesHello(open, 'u1')), token: undefined });
    });

    it('closes a connection when its token expires, and applies no push after that', async () => {
      const t = await startTestServer(abuseSchema, { driver });
      const legit = await legitimatePair(t);
      const clientId = randomUUID();
      const client = await RawClient.connect(t.url);
      await client.sync({
        ...(await notesHello(t, 'u1', clientId)),
        token: await tokenFor('u1', inSeconds(2)),
      });
      const closed = await client.closed;
      expect(closed.code).toBe(SYNC_CLOSE_CODES.tokenExpired);
      expect(client.received.at(-1)).toMatchObject({ type: 'error', code: 'token_expired', fatal: true });
      await legit.check();
      // The attack: a push sent just after the token's exp is not applied.
      const late = await RawClient.connect(t.url);
      const exp = inSeconds(2);
      await late.sync({ ...(await notesHello(t, 'u1', clientId)), token: await tokenFor('u1', exp) });
      await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 20));
      const id = randomUUID();
      if (late.socket.readyState === late.socket.OPEN) late.send(notePush(clientId, 1, id, 'u1'));
      expect((await late.closed).code).toBe(SYNC_CLOSE_CODES.tokenExpired);
      expect(late.received.some((m) => m.type === 'ack')).toBe(false);
      expect(await t.external('SELECT id FROM notes WHERE id = $1', [id])).toEqual([]);
    });

    it('a sync client whose token expires gets a new one, reconnects and loses no write', async () => {
      const t = await startTestServer(abuseSchema, { driver });
      const legit = await legitimatePair(t);
      const db = await openDatabase(abuseSchema, sqlite());
      let calls = 0;
      const errors: Error[] = [];
      const sync = syncClient(db, {
        url: t.url,
        // Each token lasts two to three seconds: the connection is closed for it while the app writes.
        token: () => {
          calls++;
          return tokenFor('u1', inSeconds(3));
        },
        shapes: [{ table: notes }],
        backoff: { initialMs: 20, maxMs: 200 },
      });
      sync.on('error', (error) => errors.push(error));
      try {
        await sync.start();
        const written: string[] = [];
        const until = Date.now() + 4500;
        for (let i = 0; i < 200 && Date.now() < until; i++) {
          const id = randomUUID();
          await db.insert(notes).values({ id, ownerId: 'u1', body: `note ${i}` });
          written.push(id);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await waitFor(() => calls >= 2, 5000, 'the client to ask for a new token');
        await sync.flush();
        const stored = await t.external('SELECT id FROM notes WHERE owner_id = $1', ['u1']);
        expect(new Set(stored.map((row) => row.id))).toEqual(new Set(written));
        expect(sync.status).not.toBe('offline');
        expect(errors).toEqual([]);
        await legit.check();
      } finally {
        await sync.stop();
        await db.close();
      }
    });
  });
}
