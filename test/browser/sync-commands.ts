import { SignJWT } from 'jose';
import type { BrowserCommand } from 'vitest/node';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { type Database, eq, openDatabase } from '../../src/index.js';
import { type SyncClient, syncClient } from '../../src/sync/client/index.js';
import { createSyncServer, type SyncServer } from '../../src/sync/server/index.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { browserSyncSchema, notes } from './browser-sync-schema.js';

// Commands run in the Node process that drives Chromium: the page asks for a sync server, for
// backend writes and reads, for a second sync client in Node (better-sqlite3) to conflict with,
// and for its connection to be cut, through them (vitest's `commands`), over its own RPC, not the
// sync socket. The page reaches the server through a TCP proxy, so its connection can be cut.
const secret = 'browser-sync-test-secret-of-32-bytes-or-more';
let server: SyncServer<typeof browserSyncSchema> | undefined;
let proxy: TcpProxy | undefined;
let node: { db: Database<typeof browserSyncSchema>; sync: SyncClient; errors: string[] } | undefined;

/** A note as the commands hand it over (the page's and the server's rows compare to it). */
type Note = { id: string; body: string; pinned: boolean };

/** A command that updates one note's columns. */
type UpdateCommand = BrowserCommand<[id: string, set: Partial<Omit<Note, 'id'>>]>;

function running(): SyncServer<typeof browserSyncSchema> {
  if (!server) throw new Error('call startSyncServer() first');
  return server;
}

function token(user: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

async function selectNotes(db: Database<typeof browserSyncSchema>): Promise<Note[]> {
  return await db
    .select({ id: notes.id, body: notes.body, pinned: notes.pinned })
    .from(notes)
    .orderBy(notes.id);
}

/**
 * Starts a sync server on an in-memory PGlite at 127.0.0.1 (a free port), and the proxy the page
 * reaches it through: the proxy's URL and a token.
 */
const startSyncServer: BrowserCommand<[]> = async () => {
  server ??= await (async () => {
    const s = await createSyncServer({
      schema: browserSyncSchema,
      database: pglite(),
      auth: { jwtSecret: secret },
      log: { level: 'silent' },
    });
    await s.listen({ port: 0, host: '127.0.0.1' });
    return s;
  })();
  proxy ??= await startTcpProxy(server.port);
  return {
    url: `ws://127.0.0.1:${proxy.port}${new URL(server.url).pathname}`,
    token: await token('browser-user'),
  };
};

/** The notes the server holds, by id. */
const serverNotes: BrowserCommand<[]> = async () => selectNotes(running().db);

/** A backend write through `server.db`, as app code on the server makes it. */
const backendInsert: BrowserCommand<[id: string, body: string]> = async (_context, id, body) => {
  await running().db.insert(notes).values({ id, body });
};

/** A backend update of one note through `server.db`. */
const backendUpdate: UpdateCommand = async (_context, id, set) => {
  await running().db.update(notes).set(set).where(eq(notes.id, id));
};

/** A backend delete of one note through `server.db`. */
const backendDelete: BrowserCommand<[id: string]> = async (_context, id) => {
  await running().db.delete(notes).where(eq(notes.id, id));
};

/**
 * Cuts the page's sync connection at the proxy. With `refuse`, the page stays cut off (new
 * connections are refused) until `setReachable(true)`; without, it may reconnect at once.
 */
const cutConnection: BrowserCommand<[refuse?: boolean]> = async (_context, refuse = false) => {
  if (!proxy) throw new Error('call startSyncServer() first');
  if (refuse) {
    proxy.setRefusing(true);
    return proxy.cuts;
  }
  // The page may still show "online" for the connection cut before while it opens the next one:
  // wait (a bounded while) for a connection to cut.
  for (let i = 0; i < 200 && proxy.open === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  proxy.cutAll();
  return proxy.cuts;
};

/** Lets the page connect again after `cutConnection(true)`. */
const setReachable: BrowserCommand<[]> = async () => {
  proxy?.setRefusing(false);
};

/** Starts a second sync client, in Node on better-sqlite3, straight to the server. */
const startNodeClient: BrowserCommand<[]> = async () => {
  if (node) return;
  const db = await openDatabase(browserSyncSchema, sqlite());
  const sync = syncClient(db, {
    url: running().url,
    token: await token('node-user'),
    shapes: [{ table: notes }],
    backoff: { initialMs: 10, maxMs: 100 },
  });
  const errors: string[] = [];
  sync.on('error', (error) => errors.push(error.message));
  node = { db, sync, errors };
  await sync.start();
};

function nodeClient() {
  if (!node) throw new Error('call startNodeClient() first');
  return node;
}

/** The Node client updates one note (a local write it then pushes). */
const nodeUpdate: UpdateCommand = async (_context, id, set) => {
  await nodeClient().db.update(notes).set(set).where(eq(notes.id, id));
};

/**
 * Waits until the Node client has pushed every write and received everything committed so far;
 * returns its notes and the errors it reported.
 */
const nodeSettle: BrowserCommand<[]> = async () => {
  const { db, sync, errors } = nodeClient();
  await sync.flush();
  await sync.caughtUp();
  return { notes: await selectNotes(db), errors };
};

/** Stops the Node client, the server and the proxy (the next `startSyncServer()` starts anew). */
const stopSyncServer: BrowserCommand<[]> = async () => {
  if (node) {
    await node.sync.stop();
    await node.db.close();
    node = undefined;
  }
  await proxy?.close();
  proxy = undefined;
  await server?.close();
  server = undefined;
};

/** The commands the browser project registers (see vitest.config.ts). */
export const syncCommands = {
  startSyncServer,
  serverNotes,
  backendInsert,
  backendUpdate,
  backendDelete,
  cutConnection,
  setReachable,
  startNodeClient,
  nodeUpdate,
  nodeSettle,
  stopSyncServer,
};
