import { afterAll, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { sqliteWasm } from '../../src/drivers/sqlite-wasm/index.js';
import { openDatabase } from '../../src/index.js';
import { syncClient } from '../../src/sync/client/index.js';
import { browserSyncSchema, notes } from './browser-sync-schema.js';

declare module 'vitest/browser' {
  interface BrowserCommands {
    startSyncServer(): Promise<{ url: string; token: string }>;
    serverNotes(): Promise<{ id: string; body: string; pinned: boolean }[]>;
    backendInsert(id: string, body: string): Promise<void>;
    stopSyncServer(): Promise<void>;
  }
}

afterAll(() => commands.stopSyncServer());

/** Polls `check` every 20 ms until it holds, for at most `timeoutMs`. */
async function until(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

it("syncs both ways from the page, over the browser's own WebSocket, on SQLite WASM in OPFS", async () => {
  expect(typeof globalThis.WebSocket).toBe('function');
  const { url, token } = await commands.startSyncServer();
  const driver = sqliteWasm({ name: `sync-${Date.now().toString(36)}.db` });
  const db = await openDatabase(browserSyncSchema, driver);
  expect(driver.storage).toBe('opfs');
  const sync = syncClient(db, { url, token, shapes: [{ table: notes }] });

  // Written before start(): captured all the same, pushed once online.
  await db.insert(notes).values({ id: '20000000-0000-4000-8000-000000000001', body: 'from the page' });
  const seen: string[][] = [];
  const stopWatching = db
    .select({ body: notes.body })
    .from(notes)
    .orderBy(notes.id)
    .watch()
    .subscribe((rows) => seen.push(rows.map((r) => r.body)));
  await sync.start();
  await sync.flush();
  expect(await commands.serverNotes()).toEqual([
    { id: '20000000-0000-4000-8000-000000000001', body: 'from the page', pinned: false },
  ]);

  // A backend write reaches the page's live query.
  await commands.backendInsert('20000000-0000-4000-8000-000000000002', 'from the backend');
  await until(() => seen.at(-1)?.length === 2, 'the backend row in the live query');
  expect(seen.at(-1)).toEqual(['from the page', 'from the backend']);
  expect(sync.status).toBe('online');

  stopWatching();
  await sync.stop();
  await db.close();
});
