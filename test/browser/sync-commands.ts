import { SignJWT } from 'jose';
import type { BrowserCommand } from 'vitest/node';
import { pglite } from '../../src/drivers/pglite/index.js';
import { createSyncServer, type SyncServer } from '../../src/sync/server/index.js';
import { browserSyncSchema, notes } from './browser-sync-schema.js';

// Commands run in the Node process that drives Chromium: the page asks for a sync server and for
// backend writes and reads through them (vitest's `commands`), over its own RPC, not the sync socket.
const secret = 'browser-sync-test-secret-of-32-bytes-or-more';
let server: SyncServer<typeof browserSyncSchema> | undefined;

function running(): SyncServer<typeof browserSyncSchema> {
  if (!server) throw new Error('call startSyncServer() first');
  return server;
}

/** Starts a sync server on an in-memory PGlite at 127.0.0.1 (a free port): its URL and a token. */
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
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('browser-user')
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
  return { url: server.url, token };
};

/** The notes the server holds, by id. */
const serverNotes: BrowserCommand<[]> = async () =>
  running().db.select({ id: notes.id, body: notes.body, pinned: notes.pinned }).from(notes).orderBy(notes.id);

/** A backend write through `server.db`, as app code on the server makes it. */
const backendInsert: BrowserCommand<[id: string, body: string]> = async (_context, id, body) => {
  await running().db.insert(notes).values({ id, body });
};

const stopSyncServer: BrowserCommand<[]> = async () => {
  await server?.close();
  server = undefined;
};

/** The commands the browser project registers (see vitest.config.ts). */
export const syncCommands = { startSyncServer, serverNotes, backendInsert, stopSyncServer };
