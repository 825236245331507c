import { describe, expect, it } from 'vitest';
import { eq } from '../../src/index.js';
import type { ChangeJson, ChangesMessage } from '../../src/sync/protocol/messages.js';
import { SYNC_CLOSE_CODES } from '../../src/sync/server/index.js';
import { appSchema, lists, todos } from '../support/fixtures.js';
import {
  helloMessage,
  postgresAvailable,
  RawClient,
  serverDrivers,
  startTestServer,
} from '../support/sync-server.js';

/**
 * The live stream (docs/sync-internals.md, "Server flow" step 2): every write reaches a live
 * client as a `changes` message, whoever made it (the server's own Database, another program on
 * another connection), in commit order, each change once, with cursors that follow on from each
 * other; a ping is answered once the client has everything committed before it; a client that
 * comes back with a cursor gets what it missed, from memory or from the log.
 */

const LIST = '6f9619ff-8b86-d011-b42d-00c04fc964ff';
const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';

type Test = Awaited<ReturnType<typeof startTestServer<typeof appSchema>>>;

async function liveClient(t: Test, cursor?: string) {
  const client = await RawClient.connect(t.url);
  const clientId = crypto.randomUUID();
  const { position } = await client.sync(
    helloMessage(appSchema, {
      clientId,
      token: await t.token('u1'),
      shapes: [
        { id: 'lists', table: 'lists' },
        { id: 'todos', table: 'todos' },
      ],
      ...(cursor === undefined ? {} : { cursor }),
    }),
  );
  return { client, position: position ?? cursor! };
}

/**
 * Pings, then returns every `changes` message received from the one that starts at `cursor` up to
 * the pong, checking that each follows on from the one before and that the pong is where they end.
 */
async function changesUntilCaughtUp(client: RawClient, cursor: string): Promise<ChangesMessage[]> {
  const pong = await client.ping();
  const all = client.received.filter((m): m is ChangesMessage => m.type === 'changes');
  const start = all.findIndex((m) => m.from === cursor);
  const messages = start < 0 ? [] : all.slice(start);
  let at = cursor;
  for (const m of messages) {
    expect(m.from).toBe(at);
    at = m.to;
  }
  expect(pong.position).toBe(at);
  return messages;
}

const summary = (changes: ChangeJson[]) =>
  changes.map((c) => [c.op, c.table, c.pk.id, ...(c.values ? [Object.keys(c.values).sort()] : [])]);

for (const driver of serverDrivers) {
  describe(`sync server live changes [${driver}]`, () => {
    it('streams writes made through server.db: inserts whole, updates with the changed columns, deletes by key', async () => {
      const t = await startTestServer(appSchema, { driver });
      const { client, position } = await liveClient(t);
      expect(position).toBe('0');

      await t.server.db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u1' });
      await t.server.db.insert(todos).values({ id: A, listId: LIST, title: 'Milk', updatedAt: new Date(5) });
      await t.server.db.update(todos).set({ title: 'Oat milk', done: true }).where(eq(todos.id, A));
      await t.server.db.delete(todos).where(eq(todos.id, A));

      const changes = (await changesUntilCaughtUp(client, '0')).flatMap((m) => m.changes);
      expect(summary(changes)).toEqual([
        ['insert', 'lists', LIST, ['id', 'name', 'owner_id']],
        ['insert', 'todos', A, ['done', 'id', 'list_id', 'note', 'position', 'tags', 'title', 'updated_at']],
        ['update', 'todos', A, ['done', 'title']],
        ['delete', 'todos', A],
      ]);
      expect(changes[1]!.values).toEqual({
        id: A,
        list_id: LIST,
        title: 'Milk',
        done: false,
        updated_at: 5,
        tags: [],
        note: null,
        position: null,
      });
      expect(changes[2]!.values).toEqual({ title: 'Oat milk', done: true });
      for (const change of changes) expect(change.hlc).toMatch(/^\d{13}-00000-postgres$/);
    });

    it('streams writes another program makes on its own connection', async () => {
      const t = await startTestServer(appSchema, { driver });
      const { client, position } = await liveClient(t);
      await t.external('INSERT INTO lists (id, name, owner_id) VALUES ($1, $2, $3)', [LIST, 'Tools', 'u9']);
      await t.external('UPDATE lists SET name = $1 WHERE id = $2', ['Garden tools', LIST]);
      const changes = (await changesUntilCaughtUp(client, position)).flatMap((m) => m.changes);
      expect(changes.map((c) => [c.op, c.values])).toEqual([
        ['insert', { id: LIST, name: 'Tools', owner_id: 'u9' }],
        ['update', { name: 'Garden tools' }],
      ]);
    });

    it('answers a ping at the position of everything committed before it, even with nothing new', async () => {
      const t = await startTestServer(appSchema, { driver });
      const { client, position } = await liveClient(t);
      expect((await client.ping('1')).position).toBe(position);
      await t.server.db.insert(lists).values({ id: LIST, name: 'L', ownerId: 'u1' });
      const messages = await changesUntilCaughtUp(client, position);
      expect(messages.at(-1)!.to).toBe('1');
    });

    it('resumes from a cursor: from memory when recent, from the log when older, never a snapshot', async () => {
      for (const changeWindow of [10_000, 1]) {
        const t = await startTestServer(appSchema, { driver, limits: { changeWindow } });
        const first = await liveClient(t);
        await t.server.db.insert(lists).values({ id: LIST, name: 'L', ownerId: 'u1' });
        const [seen] = await changesUntilCaughtUp(first.client, first.position);
        await first.client.close();

        // Three commits while away: three batches, of which a window of one keeps only the last.
        for (const id of [A, B, C]) await t.server.db.insert(todos).values({ id, listId: LIST, title: id });
        const back = await liveClient(t, seen!.to);
        const messages = await changesUntilCaughtUp(back.client, seen!.to);
        expect(back.client.received.filter((m) => m.type === 'snapshot')).toEqual([]);
        expect(messages.flatMap((m) => m.changes).map((c) => c.pk.id)).toEqual([A, B, C]);
        await t.close();
      }
    });

    it('splits a bulk write into messages of at most 1,000 changes, following on from each other', async () => {
      const t = await startTestServer(appSchema, { driver });
      await t.server.db.insert(lists).values({ id: LIST, name: 'L', ownerId: 'u1' });
      await t.settled();
      const { client, position } = await liveClient(t);
      await t.external(
        `INSERT INTO todos (id, list_id, title) SELECT gen_random_uuid(), $1, 'bulk ' || g FROM generate_series(1, 2500) g`,
        [LIST],
      );
      const messages = await changesUntilCaughtUp(client, position);
      expect(messages.map((m) => m.changes.length)).toEqual([1000, 1000, 500]);
    });

    it('drops a client that falls too far behind; it catches up from the log when it comes back', async () => {
      const t = await startTestServer(appSchema, { driver, limits: { maxBacklogChanges: 100 } });
      await t.server.db.insert(lists).values({ id: LIST, name: 'L', ownerId: 'u1' });
      await t.settled();
      const { client, position } = await liveClient(t);
      await t.external(
        `INSERT INTO todos (id, list_id, title) SELECT gen_random_uuid(), $1, 'bulk ' || g FROM generate_series(1, 300) g`,
        [LIST],
      );
      expect(await client.closed).toEqual({
        code: SYNC_CLOSE_CODES.tryAgainLater,
        reason: 'too far behind; reconnect',
      });
      const back = await liveClient(t, position);
      const messages = await changesUntilCaughtUp(back.client, position);
      expect(messages.flatMap((m) => m.changes)).toHaveLength(300);
    });

    it('sends a snapshot instead when the cursor is ahead of the log', async () => {
      const t = await startTestServer(appSchema, { driver });
      await t.server.db.insert(lists).values({ id: LIST, name: 'L', ownerId: 'u1' });
      await t.settled();
      const { client } = await liveClient(t, '999');
      const snapshots = [await client.next('snapshot'), await client.next('snapshot')];
      expect(snapshots.map((s) => [s.shapeId, s.totalRows, s.position])).toEqual([
        ['lists', 1, '1'],
        ['todos', 0, '1'],
      ]);
    });
  });
}

describe.skipIf(!postgresAvailable)('sync server live changes, real PostgreSQL only', () => {
  it('delivers a transaction that commits after later ones, once, in tick order', async () => {
    const t = await startTestServer(appSchema, { driver: 'postgres' });
    await t.server.db.insert(lists).values({ id: LIST, name: 'L', ownerId: 'u1' });
    const { client, position: cursor } = await liveClient(t);

    const slow = await t.connectExternal();
    await slow.query('BEGIN');
    await slow.query('INSERT INTO todos (id, list_id, title) VALUES ($1, $2, $3)', [A, LIST, 'slow']);
    await t.server.db.insert(todos).values({ id: B, listId: LIST, title: 'fast 1' });
    await t.server.db.insert(todos).values({ id: C, listId: LIST, title: 'fast 2' });
    // The list may come again after the snapshot that holds it (if it was ticked after): only todos count.
    const todoIds = (messages: ChangesMessage[]) =>
      messages.flatMap((m) => m.changes).flatMap((c) => (c.table === 'todos' ? [c.pk.id] : []));
    expect(todoIds(await changesUntilCaughtUp(client, cursor))).toEqual([B, C]);
    await slow.query('COMMIT');
    expect(todoIds(await changesUntilCaughtUp(client, cursor))).toEqual([B, C, A]);
  });

  it('two server instances on one database number changes once, and either serves any cursor', async () => {
    const a = await startTestServer(appSchema, { driver: 'postgres' });
    const b = await startTestServer(appSchema, { shareWith: a });
    try {
      const onA = await liveClient(a);
      const onB = await liveClient(b);
      await a.server.db.insert(lists).values({ id: LIST, name: 'via A', ownerId: 'u1' });
      await b.server.db.insert(todos).values({ id: A, listId: LIST, title: 'via B' });
      const seenA = (await changesUntilCaughtUp(onA.client, onA.position)).flatMap((m) => m.changes);
      const seenB = (await changesUntilCaughtUp(onB.client, onB.position)).flatMap((m) => m.changes);
      expect(seenA.map((c) => c.pk.id)).toEqual([LIST, A]);
      expect(seenB).toEqual(seenA);
      // A cursor handed out by A is good on B.
      const moved = await liveClient(b, '1');
      const rest = (await changesUntilCaughtUp(moved.client, '1')).flatMap((m) => m.changes);
      expect(rest.map((c) => c.pk.id)).toEqual([A]);
    } finally {
      await b.close();
      await a.close();
    }
  });
});
