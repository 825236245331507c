import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { eq } from '../../src/index.js';
import { filterToJson } from '../../src/sync/protocol/filter-to-json.js';
import { DEFAULT_MESSAGE_LIMITS, PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import { SYNC_CLOSE_CODES } from '../../src/sync/server/index.js';
import { appSchema, lists, todos } from '../support/fixtures.js';
import { helloMessage, RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';

/**
 * The handshake (docs/sync-internals.md, "Server flow" step 3): hello → welcome → snapshot in
 * chunks with totals, and every way a hello can be wrong, each refused with a fatal error that
 * says what was wrong, then a close with a code that tells the client whether to retry.
 */

const LIST = '6f9619ff-8b86-d011-b42d-00c04fc964ff';

async function seeded(driver: 'pglite' | 'postgres', todoCount: number, limits = {}) {
  const t = await startTestServer(appSchema, { driver, limits });
  await t.server.db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u1' });
  if (todoCount > 0) {
    await t.server.db.insert(todos).values(
      Array.from({ length: todoCount }, (_, i) => ({
        listId: LIST,
        title: `todo ${i}`,
        done: i % 2 === 1,
        updatedAt: new Date(1_700_000_000_000 + i),
        position: i,
      })),
    );
  }
  await t.settled();
  return t;
}

for (const driver of serverDrivers) {
  describe(`sync server handshake [${driver}]`, () => {
    it('answers hello with welcome, then sends each shape in chunks with its total', async () => {
      const t = await seeded(driver, 5, { snapshotChunkRows: 2 });
      const client = await RawClient.connect(t.url);
      client.send(
        helloMessage(appSchema, {
          token: await t.token('u1'),
          shapes: [
            { id: 'all-todos', table: 'todos' },
            { id: 'open', table: 'todos', where: filterToJson(eq(todos.done, false), todos) },
            { id: 'lists', table: 'lists' },
          ],
        }),
      );
      const welcome = await client.next('welcome');
      expect(welcome.lastMutationId).toBe(0);
      expect(welcome.limits).toEqual(DEFAULT_MESSAGE_LIMITS);
      expect(welcome.hlc).toMatch(/^\d{13}-[0-9a-f]{5}-server$/);

      const chunks = [];
      for (let i = 0; i < 6; i++) chunks.push(await client.next('snapshot'));
      expect(chunks.map((c) => [c.shapeId, c.chunk, c.rows.length, c.last, c.totalRows])).toEqual([
        ['all-todos', 0, 2, false, 5],
        ['all-todos', 1, 2, false, 5],
        ['all-todos', 2, 1, true, 5],
        ['open', 0, 2, false, 3],
        ['open', 1, 1, true, 3],
        ['lists', 0, 1, true, 1],
      ]);
      // One position for all shapes: they were read in one transaction.
      expect(new Set(chunks.map((c) => c.position)).size).toBe(1);
      const rows = chunks.filter((c) => c.shapeId === 'all-todos').flatMap((c) => c.rows);
      expect(rows.map((r) => r.title).sort()).toEqual(['todo 0', 'todo 1', 'todo 2', 'todo 3', 'todo 4']);
      const first = rows.find((r) => r.title === 'todo 0')!;
      expect(first).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        list_id: LIST,
        title: 'todo 0',
        done: false,
        updated_at: 1_700_000_000_000,
        tags: [],
        note: null,
        position: 0,
      });
      const open = chunks.filter((c) => c.shapeId === 'open').flatMap((c) => c.rows);
      expect(open.every((r) => r.done === false)).toBe(true);
      expect(chunks.at(-1)!.rows).toEqual([{ id: LIST, name: 'Groceries', owner_id: 'u1' }]);

      // Live from there: a ping is answered at the snapshot's position.
      const pong = await client.ping('p1');
      expect(pong).toEqual({ type: 'pong', v: 1, id: 'p1', position: chunks[0]!.position });
    });

    it('sends one empty last chunk for a shape with no rows, and nothing for a hello without shapes', async () => {
      const t = await seeded(driver, 0);
      const client = await RawClient.connect(t.url);
      const { rows } = await client.sync(
        helloMessage(appSchema, { token: await t.token('u1'), shapes: [{ id: 't', table: 'todos' }] }),
      );
      expect(rows.get('t')).toEqual([]);
      expect(client.received.filter((m) => m.type === 'snapshot')).toMatchObject([
        { chunk: 0, last: true, totalRows: 0, rows: [] },
      ]);

      const bare = await RawClient.connect(t.url);
      bare.send(helloMessage(appSchema, { token: await t.token('u2') }));
      await bare.next('welcome');
      expect((await bare.ping()).type).toBe('pong');
      expect(bare.received.map((m) => m.type)).toEqual(['welcome', 'pong']);
    });

    it('takes the token from an Authorization header, not from the query (see test/security/tokens)', async () => {
      const t = await seeded(driver, 0);
      const token = await t.token('u1');
      const byHeader = await RawClient.connect(t.url, { Authorization: `Bearer ${token}` });
      byHeader.send(helloMessage(appSchema));
      await byHeader.next('welcome');
      const byQuery = await RawClient.connect(`${t.url}?token=${encodeURIComponent(token)}`);
      byQuery.send(helloMessage(appSchema));
      expect(await byQuery.next('error')).toMatchObject({ code: 'auth_failed' });
    });

    describe('refuses a bad hello with a fatal error and a close', () => {
      /** Sends one first message to a fresh server: the error, the close code, and the data unchanged. */
      async function refused(hello: object | string) {
        const t = await seeded(driver, 1);
        const client = await RawClient.connect(t.url);
        client.send(hello);
        const error = await client.next('error');
        const { code } = await client.closed;
        expect(error.fatal).toBe(true);
        expect(await t.external('SELECT title FROM todos')).toEqual([{ title: 'todo 0' }]);
        return { error, closeCode: code };
      }

      it('a missing token', async () => {
        const { error, closeCode } = await refused(helloMessage(appSchema));
        expect(error.code).toBe('auth_failed');
        expect(error.message).toMatch(/no token: send one in hello\.token/);
        expect(closeCode).toBe(SYNC_CLOSE_CODES.authFailed);
      });

      it('an expired token', async () => {
        const key = new TextEncoder().encode('syncline-test-secret-of-at-least-32-bytes!');
        const expired = await new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('u1')
          .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
          .sign(key);
        const { error, closeCode } = await refused(helloMessage(appSchema, { token: expired }));
        expect(error.code).toBe('auth_failed');
        expect(error.message).toMatch(/the token expired at \d{4}-\d\d-\d\dT.*get a new token/);
        expect(closeCode).toBe(SYNC_CLOSE_CODES.authFailed);
      });

      it('a forged token (signed with another secret)', async () => {
        const forged = await new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('u1')
          .setExpirationTime('1h')
          .sign(new TextEncoder().encode('not the secret the server trusts, at all!'));
        const { error, closeCode } = await refused(helloMessage(appSchema, { token: forged }));
        expect(error.code).toBe('auth_failed');
        expect(error.message).toMatch(/signature is bad: it was not signed with the key this server trusts/);
        expect(closeCode).toBe(SYNC_CLOSE_CODES.authFailed);
      });

      it('a token that is not a JWT', async () => {
        const { error } = await refused(helloMessage(appSchema, { token: 'hello' }));
        expect(error.message).toMatch(/the token is malformed: expected a JWT/);
      });

      it('another schema version, naming both', async () => {
        const t = await seeded(driver, 0);
        const client = await RawClient.connect(t.url);
        client.send(helloMessage(appSchema, { token: await t.token('u1'), schemaVersion: 2 }));
        const error = await client.next('error');
        expect(error).toMatchObject({ code: 'schema_mismatch', fatal: true });
        expect(error.message).toMatch(/built for schema version 2, the server runs schema version 1/);
        expect((await client.closed).code).toBe(SYNC_CLOSE_CODES.schemaMismatch);
      });

      it('malformed JSON, an unknown message type, another protocol version, a push first', async () => {
        const cases: [object | string, string, RegExp][] = [
          ['{"type": "hello",', 'malformed_json', /not valid JSON/],
          [
            { type: 'teleport', v: PROTOCOL_VERSION },
            'unknown_type',
            /unknown client message type "teleport"/,
          ],
          [{ ...helloMessage(appSchema), v: 2 }, 'version_mismatch', /protocol version 2 is not supported/],
          [
            { type: 'ping', v: PROTOCOL_VERSION },
            'invalid_message',
            /the first message must be hello, got ping/,
          ],
        ];
        for (const [message, code, text] of cases) {
          const { error, closeCode } = await refused(message);
          expect(error.code).toBe(code);
          expect(error.message).toMatch(text);
          expect(closeCode).toBe(SYNC_CLOSE_CODES.protocolError);
        }
      });

      it('an unknown table, an unknown column, a filter that is not a valid tree', async () => {
        const t = await seeded(driver, 0);
        const token = await t.token('u1');
        const cases: [object, string, RegExp][] = [
          [
            { id: 's', table: 'notes' },
            'unknown_table',
            /shapes\[0\]\.table: table "notes" is not in the schema; the synced tables are lists, todos/,
          ],
          [
            { id: 's', table: 'todos', where: { op: 'eq', column: 'titel', value: 'x' } },
            'unknown_column',
            /table "todos" has no column "titel"; its columns are id, list_id, title/,
          ],
          [
            { id: 's', table: 'todos', where: { op: 'gt', column: 'done' } },
            'invalid_message',
            /shapes\[0\]\.where\.value: missing/,
          ],
          [
            { id: 's', table: 'todos', where: { op: 'like', column: 'position', pattern: '1%' } },
            'invalid_filter',
            /pattern matching needs a text column, and this one is integer/,
          ],
        ];
        for (const [shape, code, text] of cases) {
          const client = await RawClient.connect(t.url);
          client.send(helloMessage(appSchema, { token, shapes: [shape as never] }));
          const error = await client.next('error');
          expect(error).toMatchObject({ code, fatal: true });
          expect(error.message).toMatch(text);
          expect((await client.closed).code).toBe(SYNC_CLOSE_CODES.protocolError);
        }
      });

      it('no hello in time', async () => {
        const t = await startTestServer(appSchema, { driver, limits: { helloTimeoutMs: 100 } });
        const client = await RawClient.connect(t.url);
        const error = await client.next('error');
        expect(error).toMatchObject({ code: 'hello_timeout', fatal: true });
        expect(error.message).toBe('no hello within 100 ms: send hello right after connecting');
        expect((await client.closed).code).toBe(SYNC_CLOSE_CODES.protocolError);
      });
    });

    it('after hello, answers bad messages with a non-fatal error and goes on', async () => {
      const t = await seeded(driver, 1);
      const client = await RawClient.connect(t.url);
      await client.sync(helloMessage(appSchema, { token: await t.token('u1') }));
      const cases: [object | string, string, RegExp][] = [
        ['not json', 'malformed_json', /not valid JSON/],
        [{ type: 'teleport', v: 1 }, 'unknown_type', /unknown client message type "teleport"/],
        [{ type: 'ping', v: 7 }, 'version_mismatch', /protocol version 7 is not supported/],
        [helloMessage(appSchema), 'invalid_message', /hello was already received/],
        [{ type: 'push', v: 1, batches: [] }, 'invalid_message', /batches: a push holds at least one batch/],
        ['x'.repeat(DEFAULT_MESSAGE_LIMITS.maxMessageBytes + 1), 'too_large', /over the limit/],
      ];
      for (const [message, code, text] of cases) {
        client.send(message);
        const error = await client.next('error');
        expect(error).toMatchObject({ code, fatal: false });
        expect(error.message).toMatch(text);
      }
      expect((await client.ping('still-here')).id).toBe('still-here');
      const [{ n }] = await t.external('SELECT count(*)::int AS n FROM todos');
      expect(n).toBe(1);
    });
  });
}
