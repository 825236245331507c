import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocket as WebSocketClass, WebSocketServer } from 'ws';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  type Database,
  integer,
  openDatabase,
  SyncProtocolError,
  schema,
  table,
  text,
  UsageError,
} from '../../src/index.js';
import {
  type SyncClient,
  type SyncClientOptions,
  SyncConnectionError,
  SyncServerError,
  syncClient,
} from '../../src/sync/client/index.js';
import {
  DEFAULT_MESSAGE_LIMITS,
  type HelloMessage,
  parseClientMessage,
} from '../../src/sync/protocol/messages.js';
import { waitFor } from '../support/wait.js';
import { clientSchema, drafts, lists, outbox, storedCursor, todos, uuidOf } from './client-helpers.js';

/**
 * The client's connection handling against a scripted WebSocket server on loopback: what it does
 * with bad messages, silence, gaps and fatal errors, how it retries, and when it stamps.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Scripted {
  readonly url: string;
  readonly hellos: HelloMessage[];
  readonly received: unknown[];
}

/** A WebSocket server that runs `script` for each connection after reading its hello. */
async function scriptedServer(
  script: (socket: WebSocket, hello: HelloMessage, n: number) => void,
): Promise<Scripted> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const hellos: HelloMessage[] = [];
  const received: unknown[] = [];
  wss.on('connection', (socket) => {
    socket.once('message', (data) => {
      const hello = parseClientMessage(data as Buffer) as HelloMessage;
      hellos.push(hello);
      socket.on('message', (more) => received.push(JSON.parse(String(more))));
      script(socket, hello, hellos.length);
    });
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close(() => resolve());
      }),
  );
  const { port } = wss.address() as { port: number };
  return { url: `ws://127.0.0.1:${port}/sync`, hellos, received };
}

function welcome(socket: WebSocket): void {
  socket.send(JSON.stringify({ type: 'welcome', v: 1, lastMutationId: 0, limits: DEFAULT_MESSAGE_LIMITS }));
}

function emptySnapshot(socket: WebSocket, hello: HelloMessage, position = '5'): void {
  for (const shape of hello.shapes) {
    socket.send(
      JSON.stringify({
        type: 'snapshot',
        v: 1,
        shapeId: shape.id,
        position,
        chunk: 0,
        last: true,
        totalRows: 0,
        rows: [],
      }),
    );
  }
}

async function client(
  options: Partial<SyncClientOptions> & { url: string },
): Promise<{ db: Database; sync: SyncClient; errors: Error[] }> {
  const db = await openDatabase(clientSchema, sqlite());
  const sync = syncClient(db, {
    backoff: { initialMs: 10, maxMs: 50 },
    shapes: [{ table: lists }],
    ...options,
  });
  const errors: Error[] = [];
  sync.on('error', (error) => errors.push(error));
  cleanups.push(async () => {
    await sync.stop();
    await db.close();
  });
  return { db, sync, errors };
}

async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `ws://127.0.0.1:${port}/sync`;
}

describe('sync client connection', () => {
  it('sends hello with its id, schema version, token and shapes, and with a cursor the shapes it stands for', async () => {
    const server = await scriptedServer((socket, hello) => {
      welcome(socket);
      if (hello.cursor === undefined) emptySnapshot(socket, hello, '7');
    });
    const { db, sync } = await client({ url: server.url, token: 't0k3n', WebSocket: WebSocketClass });
    await sync.start();
    await waitFor(async () => (await storedCursor(db)) !== null, 5000, 'the cursor');
    await sync.stop();
    await sync.start();
    await waitFor(() => server.hellos.length === 2, 5000, 'the second hello');
    const [first, second] = server.hellos;
    expect(first).toMatchObject({
      clientId: sync.clientId,
      schemaVersion: 1,
      token: 't0k3n',
      shapes: [{ id: 'lists', table: 'lists' }],
    });
    expect(first.cursor).toBeUndefined();
    expect(second.cursor).toBe('7');
    await sync.stop();
    const other = syncClient(db, { url: server.url, shapes: [{ table: todos }] });
    cleanups.push(() => other.stop());
    await other.start();
    await waitFor(() => server.hellos.length === 3, 5000, 'the third hello');
    // The cursor goes with the shapes the rows stand for; the new shape is added once welcomed
    // (subscribe) and the old one dropped (unsubscribe), without a snapshot of everything.
    expect(server.hellos[2]).toMatchObject({ cursor: '7', shapes: [{ id: 'lists', table: 'lists' }] });
  });

  it('drops the connection on an invalid server message, reports it, and reconnects', async () => {
    const server = await scriptedServer((socket, _hello, n) => {
      welcome(socket);
      if (n === 1) socket.send(JSON.stringify({ type: 'changes', v: 1, from: 'x' }));
    });
    const { sync, errors } = await client({ url: server.url });
    await sync.start();
    await waitFor(() => server.hellos.length >= 2, 5000, 'a reconnect');
    expect(errors[0]).toBeInstanceOf(SyncProtocolError);
    expect(errors[0].message).toMatch(/invalid changes message/);
  });

  it('reconnects without an error when changes do not start at its cursor', async () => {
    const server = await scriptedServer((socket, hello, n) => {
      welcome(socket);
      emptySnapshot(socket, hello);
      if (n === 1) socket.send(JSON.stringify({ type: 'changes', v: 1, from: '9', to: '10', changes: [] }));
    });
    const { sync, errors } = await client({ url: server.url });
    await sync.start();
    await waitFor(() => server.hellos.length >= 2, 5000, 'a reconnect');
    expect(errors).toEqual([]);
  });

  it('drops a connection that stays silent past the keep-alive, and reconnects', async () => {
    const server = await scriptedServer((socket) => welcome(socket));
    const { sync, errors } = await client({ url: server.url, pingIntervalMs: 30 });
    await sync.start();
    await waitFor(() => server.hellos.length >= 2, 5000, 'a reconnect');
    expect(server.received).toContainEqual(expect.objectContaining({ type: 'ping' }));
    expect(errors.some((e) => e instanceof SyncConnectionError && /no answer/.test(e.message))).toBe(true);
  });

  it('resolves start() after a failed first attempt, and keeps retrying until stopped', async () => {
    const { sync, errors } = await client({ url: await refusedUrl() });
    await sync.start();
    expect(sync.status).toBe('connecting');
    await waitFor(() => errors.length >= 2, 5000, 'a second attempt');
    expect(errors[0]).toBeInstanceOf(SyncConnectionError);
    await sync.stop();
    expect(sync.status).toBe('offline');
    const count = errors.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(errors.length).toBe(count);
  });

  it('says connecting from the start() call on, and a start() made during a stop() connects again', async () => {
    const server = await scriptedServer((socket, hello) => {
      welcome(socket);
      emptySnapshot(socket, hello);
    });
    const { sync } = await client({ url: server.url });
    const statuses: string[] = [];
    sync.on('status', (s) => statuses.push(s));
    const started = sync.start();
    expect(sync.status).toBe('connecting');
    await started;
    await waitFor(() => sync.status === 'online', 5000, 'the client to be online');
    const stopping = sync.stop();
    const restarted = sync.start();
    await stopping;
    await restarted;
    await waitFor(() => sync.status === 'online', 5000, 'the client to be online again');
    expect(server.hellos).toHaveLength(2);
    expect(statuses).toEqual(['connecting', 'online', 'offline', 'connecting', 'online']);
  });

  it('stops for good on a fatal refusal, but retries after a fatal server failure', async () => {
    const refusing = await scriptedServer((socket) => {
      socket.send(JSON.stringify({ type: 'error', v: 1, code: 'forbidden', message: 'no', fatal: true }));
      socket.close(4003);
    });
    const a = await client({ url: refusing.url });
    await expect(a.sync.start()).rejects.toThrow(SyncServerError);
    expect(a.sync.status).toBe('offline');

    const failing = await scriptedServer((socket, _hello, n) => {
      if (n === 1) {
        socket.send(
          JSON.stringify({ type: 'error', v: 1, code: 'server_error', message: 'oops', fatal: true }),
        );
        socket.close(1011);
      } else welcome(socket);
    });
    const b = await client({ url: failing.url });
    await b.sync.start();
    await waitFor(() => b.sync.status === 'online', 5000, 'the retry');
  });

  it('stamps each local transaction as it commits, one mutation id each', async () => {
    const { db, sync } = await client({ url: await refusedUrl() });
    await sync.start();
    await db.transaction(async (tx) => {
      await tx.insert(lists).values({ id: '0f8fad5b-d9cb-469f-a165-70867728950e', name: 'A', ownerId: 'u' });
      await tx.insert(lists).values({ id: '7c9e6679-7425-40de-944b-e07fc1f90ae7', name: 'B', ownerId: 'u' });
    });
    await db.insert(lists).values({ id: '3f333df6-90a4-4fda-8dd3-9485d27cee36', name: 'C', ownerId: 'u' });
    await db.insert(drafts).values({ id: '3f333df6-90a4-4fda-8dd3-9485d27cee36', body: 'local' });
    await waitFor(async () => (await outbox(db)).every((r) => r.mutation_id !== null), 5000, 'stamping');
    expect((await outbox(db)).map((r) => r.mutation_id)).toEqual([1, 1, 2]);
    // Many commits in a row, before a pass could run between them: still one id per transaction.
    for (let i = 0; i < 20; i++) {
      await db.insert(lists).values({ id: uuidOf(i), name: 'n', ownerId: 'u' });
    }
    await waitFor(async () => (await outbox(db)).every((r) => r.mutation_id !== null), 5000, 'stamping');
    expect((await outbox(db)).map((r) => r.mutation_id)).toEqual([
      1,
      1,
      2,
      ...Array.from({ length: 20 }, (_, i) => i + 3),
    ]);
  });

  it('refuses bad options with UsageError', async () => {
    const db = await openDatabase(clientSchema, sqlite());
    cleanups.push(() => db.close());
    expect(() => syncClient(db, { url: 'http://localhost/sync' })).toThrow(/ws:\/\/ or wss:\/\//);
    expect(() => syncClient(db, { url: 'nope' })).toThrow(UsageError);
    expect(() => syncClient(db, { url: 'ws://x', shapes: [{ table: drafts }] })).toThrow(/localTable/);
    expect(() =>
      syncClient(db, {
        url: 'ws://x',
        shapes: [
          { table: lists, id: 'a' },
          { table: todos, id: 'a' },
        ],
      }),
    ).toThrow(/used twice/);
    expect(() => syncClient(db, { url: 'ws://x', pingIntervalMs: 0 })).toThrow(/pingIntervalMs/);
    const two = syncClient(db, { url: 'ws://x', shapes: [{ table: lists }, { table: lists }] });
    expect(two).toBeDefined();
    const loose = table('loose', { name: text(), n: integer() });
    const looseDb = await openDatabase(schema({ loose }), sqlite());
    cleanups.push(() => looseDb.close());
    await expect(syncClient(looseDb, { url: 'ws://127.0.0.1:1/sync' }).start()).rejects.toThrow(
      /has no primary key/,
    );
  });

  it('rejects flush() and caughtUp() that were waiting when the client stops', async () => {
    const { db, sync } = await client({ url: await refusedUrl() });
    await expect(sync.flush()).rejects.toThrow(/call start\(\) first/);
    await sync.start();
    await db.insert(lists).values({ id: '0f8fad5b-d9cb-469f-a165-70867728950e', name: 'A', ownerId: 'u' });
    const flushed = sync.flush();
    const caught = sync.caughtUp();
    await sync.stop();
    await expect(flushed).rejects.toThrow(/stopped/);
    await expect(caught).rejects.toThrow(/stopped/);
  });
});
