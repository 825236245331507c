import { randomUUID } from 'node:crypto';
import { integer, type Schema, schema, table, text, uuid } from '../../src/index.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import { helloMessage, RawClient, type TestServer } from '../support/sync-server.js';

/**
 * The schema of the abuse tests: `notes`, which the legitimate clients sync, and `bulk`, big rows
 * an attacker's snapshot reads (seeded with `seedBulk`).
 */
export const notes = table('notes', {
  id: uuid().primaryKey(),
  ownerId: text('owner_id').notNull(),
  body: text().notNull(),
});
export const bulk = table('bulk', {
  id: integer().primaryKey(),
  body: text().notNull(),
});
export const abuseSchema = schema({ notes, bulk }, { version: 1 });

/** A test server whose schema has `notes` (abuseSchema, or one built on its tables). */
type NotesServer = Pick<TestServer<Schema>, 'url' | 'token'>;

/** The hello of a client that syncs `notes` as `userId`. */
export async function notesHello(t: NotesServer, userId: string, clientId = randomUUID()) {
  return helloMessage(abuseSchema, {
    clientId,
    token: await t.token(userId),
    shapes: [{ id: 'notes', table: 'notes' }],
  });
}

/** Fills `bulk` with `rows` rows of `bytes` bytes each, in one statement. */
export async function seedBulk(
  t: TestServer<typeof abuseSchema>,
  rows: number,
  bytes: number,
): Promise<void> {
  await t.external(
    `INSERT INTO bulk (id, body) SELECT g, repeat('x', ${bytes}) FROM generate_series(1, ${rows}) g`,
  );
}

/**
 * A `push` from `clientId` of one batch that inserts note `id` of `ownerId`.
 *
 * @example
 *   client.send(notePush(clientId, 1, randomUUID(), 'u1'));
 */
export function notePush(clientId: string, mutationId: number, id: string, ownerId: string) {
  const change = {
    table: 'notes',
    op: 'insert',
    pk: { id },
    values: { id, owner_id: ownerId, body: `note ${mutationId}` },
    hlc: encodeHlc({ wallMs: Date.now(), counter: 0, nodeId: clientId }),
  };
  return { type: 'push', v: PROTOCOL_VERSION, batches: [{ mutationId, changes: [change] }] };
}

/**
 * Two well-behaved clients of other users, live on `notes`: `check()` has the writer push a note
 * and resolves once the reader received it, failing when that takes over `withinMs` (default one
 * second): the server keeps serving them whatever else is going on.
 *
 * @example
 *   const legit = await legitimatePair(t);
 *   await attack();
 *   await legit.check();
 */
export async function legitimatePair(t: NotesServer, withinMs = 1000) {
  const writerId = randomUUID();
  const writer = await RawClient.connect(t.url);
  await writer.sync(await notesHello(t, 'legit-writer', writerId));
  const reader = await RawClient.connect(t.url);
  await reader.sync(await notesHello(t, 'legit-reader'));
  let mutationId = 0;
  const check = async (): Promise<void> => {
    const id = randomUUID();
    const started = Date.now();
    writer.send(notePush(writerId, ++mutationId, id, 'legit-writer'));
    for (;;) {
      const left = withinMs - (Date.now() - started);
      if (left <= 0) throw new Error(`a legitimate write did not reach another client within ${withinMs} ms`);
      const message = await reader.next(undefined, left).catch((error: Error) => {
        throw new Error(`a legitimate write did not reach another client: ${error.message}`);
      });
      if (message.type === 'changes' && message.changes.some((c) => c.pk.id === id)) return;
    }
  };
  return { writer, reader, check };
}
