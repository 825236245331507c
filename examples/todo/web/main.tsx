import { createRoot } from 'react-dom/client';
import { sqliteWasm } from '../../../src/drivers/sqlite-wasm/index.js';
import { openDatabase } from '../../../src/index.js';
import { SynclineProvider } from '../../../src/react/index.js';
import { syncClient } from '../../../src/sync/client/index.js';
import { todoMutators } from '../mutators.js';
import { todoSchema } from '../schema.js';
import { App } from './app.js';
import { keepAppShell } from './app-shell.js';
import { PageConnection } from './page-connection.js';

// The todo page: SQLite WASM in a worker (kept in OPFS), synced with the server, rendered with
// React from live queries (syncline/react). Every edit is a local write: it shows at once, works
// offline, and the sync client pushes it when the server is reachable. Open it as ?user=alice
// (any name will do: the demo's "login" is GET /api/token).

const params = new URLSearchParams(location.search);
const user = /^[\w-]{1,32}$/.test(params.get('user') ?? '') ? params.get('user')! : 'guest';
// `?sync=ws://…` points the page at another sync endpoint (the end-to-end tests put a proxy there).
const syncUrl =
  params.get('sync') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync`;

// Commits are not flushed to disk (they survive a crash of the tab or the browser, not of the
// system), so an edit goes out without waiting for OPFS: 2 to 20 ms per commit in Chromium.
const driver = sqliteWasm({ name: `todo-${user}.db`, synchronous: 'normal' });
const db = await openDatabase(todoSchema, driver);

// Made now, started by the page once its live queries are subscribed (App's effect).
const sync = syncClient(db, {
  url: syncUrl,
  // Asked on every connection attempt; while the server is unreachable this fails and the
  // client tries again later.
  token: async () => {
    let response: Response;
    try {
      response = await fetch(`/api/token?user=${encodeURIComponent(user)}`);
    } catch (error) {
      connection.unreachable();
      throw error;
    }
    if (!response.ok) throw new Error(`GET /api/token answered ${response.status}`);
    return ((await response.json()) as { token: string }).token;
  },
  // A connection that went silent (the browser offline without closing it) is dropped after
  // two intervals, not six: 10 to 15 s rather than 30 to 45.
  pingIntervalMs: 5_000,
  // Business logic that runs here at once and again on the server (mutators.ts).
  mutators: todoMutators,
});
const connection = new PageConnection(sync);

// For the browser console and the end-to-end tests.
Object.assign(window, { todoApp: { db, sync, driver } });

createRoot(document.getElementById('app')!).render(
  <SynclineProvider db={db} sync={sync}>
    <App user={user} storage={driver.storage === 'opfs' ? 'OPFS' : 'memory'} connection={connection} />
  </SynclineProvider>,
);

keepAppShell().catch((error: Error) =>
  console.warn(`the app shell is not kept for offline use: ${error.message}`),
);
