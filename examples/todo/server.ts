import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createServer as createViteServer } from 'vite';
import type { Driver } from '../../src/database/driver.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { createSyncServer, type SyncRules, type SyncServer } from '../../src/sync/server/index.js';
import { todoMutators } from './mutators.js';
import { todoSchema } from './schema.js';
import { forwardUpgrade } from './sync-upgrade.js';
import { handleTodoApi } from './todo-api.js';
import { todoWebConfig } from './web-config.js';

/** Where the demo keeps its PGlite database when no other is given. */
export const DEFAULT_DATA_DIR = fileURLToPath(new URL('./.data/pglite', import.meta.url));

/** The demo's secret; set JWT_SECRET (32 bytes or more) anywhere that is not your own machine. */
const DEMO_SECRET = 'syncline-todo-demo-secret-not-for-production';

/**
 * How to start the todo server: the port of its one HTTP server (default 5173; 0 takes a free
 * one), the database (a `postgres://` URL, or a folder for PGlite; default `examples/todo/.data/pglite`),
 * the HS256 secret of its tokens (default `JWT_SECRET`, else a fixed demo secret), and whether to
 * take a free port when `port` is taken (default false: fail).
 *
 * @example
 *   const options: TodoServerOptions = { port: 0, database: '/tmp/todo-data' };
 */
export interface TodoServerOptions {
  port?: number;
  database?: string;
  secret?: string;
  anyPortIfTaken?: boolean;
}

/**
 * A running todo server: the page's URL (`http://127.0.0.1:port/`), its port, the sync server
 * (whose `db` is the backend's Database) and `close()`, which stops everything.
 *
 * @example
 *   const app = await startTodoServer({ port: 0 });
 *   await app.sync.db.delete(todos); // reaches every page
 *   await app.close();
 */
export interface TodoServer {
  readonly url: string;
  readonly port: number;
  readonly sync: SyncServer<typeof todoSchema>;
  close(): Promise<void>;
}

// The demo is one shared board: every signed-in user reads and writes every list and todo. A real
// app narrows these per user (docs/design.md section 4, "Shapes, rules and auth").
const rules: SyncRules<typeof todoSchema> = {
  lists: { read: () => true, write: () => true },
  todos: { read: () => true, write: () => true },
};

function databaseDriver(database: string): Driver {
  return /^postgres(ql)?:\/\//.test(database)
    ? postgres({ connectionString: database })
    : pglite({ dataDir: database });
}

function listen(http: Server, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
}

/**
 * Starts the todo app's server: the sync server on the database (with the app's mutators), the
 * demo's token endpoint (`handleTodoApi`), and the web page through Vite, all behind one HTTP server on 127.0.0.1. The
 * page connects its WebSocket to `/sync` on that server, which hands it on to the sync server.
 *
 * @example
 *   const app = await startTodoServer({ port: 5173, database: process.env.DATABASE_URL });
 *   console.log(`open ${app.url}`);
 */
export async function startTodoServer(options: TodoServerOptions = {}): Promise<TodoServer> {
  const secret = options.secret ?? process.env.JWT_SECRET ?? DEMO_SECRET;
  const sync = await createSyncServer({
    schema: todoSchema,
    database: databaseDriver(options.database ?? DEFAULT_DATA_DIR),
    auth: { jwtSecret: secret },
    rules,
    mutators: todoMutators,
    log: { level: 'warn' },
  });
  let vite: Awaited<ReturnType<typeof createViteServer>> | undefined;
  const http = createHttpServer((request, response) => {
    void handleTodoApi(request, response, secret).then((handled) => {
      if (handled) return;
      if (vite) vite.middlewares(request, response);
      else response.writeHead(503).end('starting');
    });
  });
  http.on('upgrade', (request, socket, head) => {
    const { pathname } = new URL(request.url ?? '/', 'http://localhost');
    if (pathname === '/sync') forwardUpgrade(request, socket, head, sync.port);
    // Vite's own WebSocket (page reloads on file changes) listens on this server too.
    else if (!String(request.headers['sec-websocket-protocol'] ?? '').startsWith('vite-')) socket.destroy();
  });
  try {
    await sync.listen({ port: 0 });
    const web = todoWebConfig();
    vite = await createViteServer({
      ...web,
      server: { ...web.server, middlewareMode: true, ws: { server: http } },
    });
    const port = options.port ?? 5173;
    try {
      await listen(http, port);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !options.anyPortIfTaken) throw error;
      await listen(http, 0);
    }
  } catch (error) {
    http.close();
    await vite?.close();
    await sync.close();
    throw error;
  }
  const server = http;
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    sync,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await sync.close({ timeoutMs: 2000 });
        await vite?.close();
        await stopped;
      })();
      return closing;
    },
  };
}
