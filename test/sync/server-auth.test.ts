import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNC_CLOSE_CODES } from '../../src/sync/server/index.js';
import { appSchema } from '../support/fixtures.js';
import { helloMessage, RawClient, startTestServer, TEST_JWT_SECRET } from '../support/sync-server.js';

/**
 * Tokens from an identity provider: checked against its JSON Web Key Set, fetched from a URL, with
 * the issuer and audience the server expects. Claims other than `sub` reach the rules on the user.
 */

let jwks: Server;
let jwksUrl: string;
let privateKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
  jwks = createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
});

afterAll(async () => {
  jwks.closeAllConnections();
  await new Promise((resolve) => jwks.close(resolve));
});

function providerToken(claims: Record<string, unknown>, kid = 'key-1'): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid })
    .setSubject('u1')
    .setIssuer('https://id.example')
    .setAudience('todo-app')
    .setExpirationTime('1h')
    .sign(privateKey);
}

async function helloWith(url: string, token: string) {
  const client = await RawClient.connect(url);
  client.send(helloMessage(appSchema, { token, shapes: [{ id: 'l', table: 'lists' }] }));
  return client;
}

describe('sync server auth with a key set', () => {
  it('accepts a token signed by a key of the set, and gives its claims to the rules', async () => {
    const seen: unknown[] = [];
    const t = await startTestServer(appSchema, {
      auth: { jwksUrl, issuer: 'https://id.example', audience: 'todo-app' },
      rules: {
        lists: {
          read: (user) => {
            seen.push(user);
            return true;
          },
        },
      },
    });
    const client = await helloWith(t.url, await providerToken({ role: 'admin' }));
    await client.next('welcome');
    expect(seen).toEqual([
      expect.objectContaining({ userId: 'u1', sub: 'u1', role: 'admin', aud: 'todo-app' }),
    ]);
  });

  it('refuses a token for another audience, an unknown key, and a shared-secret token', async () => {
    const t = await startTestServer(appSchema, {
      auth: { jwksUrl, issuer: 'https://id.example', audience: 'todo-app' },
    });
    const wrongAudience = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'key-1' })
      .setSubject('u1')
      .setIssuer('https://id.example')
      .setAudience('another-app')
      .setExpirationTime('1h')
      .sign(privateKey);
    const cases: [string, RegExp][] = [
      [wrongAudience, /the token's "aud" claim was refused .*get a token made for this server/],
      [await providerToken({}, 'key-2'), /no key of the server's key set matches the token/],
      [await t.token('u1'), /the token.s algorithm is not accepted here/],
    ];
    for (const [token, message] of cases) {
      const client = await helloWith(t.url, token);
      const error = await client.next('error');
      expect(error).toMatchObject({ code: 'auth_failed', fatal: true });
      expect(error.message).toMatch(message);
      expect((await client.closed).code).toBe(SYNC_CLOSE_CODES.authFailed);
    }
  });

  it('checks issuer and audience on shared-secret tokens too', async () => {
    const t = await startTestServer(appSchema, {
      auth: { jwtSecret: TEST_JWT_SECRET, issuer: 'https://id.example' },
    });
    const client = await helloWith(t.url, await t.token('u1'));
    const error = await client.next('error');
    expect(error.message).toMatch(/the token's "iss" claim was refused/);
    const good = await helloWith(t.url, await t.token('u1', { iss: 'https://id.example' }));
    await good.next('welcome');
  });
});
