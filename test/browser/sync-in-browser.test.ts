import { afterEach, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { sqliteWasm } from '../../src/drivers/sqlite-wasm/index.js';
import { eq, is, openDatabase } from '../../src/index.js';
import { SyncConnectionError, syncClient } from '../../src/sync/client/index.js';
import { browserSyncSchema, notes } from './browser-sync-schema.js';

type Note = { id: string; body: string; pinned: boolean };

declare module 'vitest/browser' {
  interface BrowserCommands {
    startSyncServer(): Promise<{ url: string; token: string }>;
    serverNotes(): Promise<Note[]>;
    backendInsert(id: string, body: string): Promise<void>;
    backendUpdate(id: string, set: Partial<Omit<Note, 'id'>>): Promise<void>;
    backendDelete(id: string): Promise<void>;
    cutConnection(refuse?: boolean): Promise<number>;
    setReachable(): Promise<void>;
    startNodeClient(): Promise<void>;
    nodeUpdate(id: string, set: Partial<Omit<Note, 'id'>>): Promise<void>;
    nodeSettle(): Promise<{ notes: Note[]; errors: string[] }>;
    stopSyncServer(): Promise<void>;
  }
}

// Each test gets a server of its own (and the Node client and proxy it started).
afterEach(() => commands.stopSyncServer());

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

/** Lets the wall clock move on, so the next write anywhere is stamped newer than the last. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

const id = (n: number) => `20000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;

/**
 * The page's side: SQLite WASM in OPFS (in its worker: every statement answers asynchronously), a
 * sync client through the proxy with fast reconnects, the errors it reported other than dropped
 * connections, and its statuses in order.
 */
async function openPage(name: string) {
  const { url, token } = await commands.startSyncServer();
  const driver = sqliteWasm({ name: `${name}-${Date.now().toString(36)}.db` });
  const db = await openDatabase(browserSyncSchema, driver);
  expect(driver.storage).toBe('opfs');
  const sync = syncClient(db, {
    url,
    token,
    shapes: [{ table: notes }],
    backoff: { initialMs: 10, maxMs: 100 },
  });
  const errors: string[] = [];
  sync.on('error', (error) => {
    if (!is(error, SyncConnectionError)) errors.push(error.message);
  });
  const statuses: string[] = [];
  sync.on('status', (status) => statuses.push(status));
  const rows = async (): Promise<Note[]> =>
    await db.select({ id: notes.id, body: notes.body, pinned: notes.pinned }).from(notes).orderBy(notes.id);
  const settle = async () => {
    await sync.flush();
    await sync.caughtUp();
  };
  const close = async () => {
    await sync.stop();
    await db.close();
  };
  return { db, sync, errors, statuses, rows, settle, close };
}

it("syncs both ways from the page, over the browser's own WebSocket, on SQLite WASM in OPFS", async () => {
  expect(typeof globalThis.WebSocket).toBe('function');
  const { db, sync, close } = await openPage('sync');

  // Written before start(): captured all the same, pushed once online.
  await db.insert(notes).values({ id: id(1), body: 'from the page' });
  const seen: string[][] = [];
  const stopWatching = db
    .select({ body: notes.body })
    .from(notes)
    .orderBy(notes.id)
    .watch()
    .subscribe((rows) => seen.push(rows.map((r) => r.body)));
  await sync.start();
  await sync.flush();
  expect(await commands.serverNotes()).toEqual([{ id: id(1), body: 'from the page', pinned: false }]);

  // A backend write reaches the page's live query.
  await commands.backendInsert(id(2), 'from the backend');
  await until(() => seen.at(-1)?.length === 2, 'the backend row in the live query');
  expect(seen.at(-1)).toEqual(['from the page', 'from the backend']);
  expect(sync.status).toBe('online');

  stopWatching();
  await close();
});

it('updates, deletes and conflicts with a Node client and the backend converge, across a reconnect', async () => {
  const page = await openPage('conflicts');
  const initial = [1, 2, 3, 4, 5].map((n) => ({ id: id(n), body: `note ${n}`, pinned: false }));
  await page.db.insert(notes).values(initial);
  await page.sync.start();
  await page.settle();
  await commands.startNodeClient();
  expect((await commands.nodeSettle()).notes).toEqual(initial);

  // The page's update and delete reach the server and the Node client.
  await page.db
    .update(notes)
    .set({ body: 'edited on the page', pinned: true })
    .where(eq(notes.id, id(1)));
  await page.db.delete(notes).where(eq(notes.id, id(2)));
  await page.settle();
  const afterPage = [{ id: id(1), body: 'edited on the page', pinned: true }, ...initial.slice(2)];
  expect(await commands.serverNotes()).toEqual(afterPage);
  expect((await commands.nodeSettle()).notes).toEqual(afterPage);

  // The backend's update and delete reach the page's live query.
  const seen: Note[][] = [];
  const stopWatching = page.db
    .select({ id: notes.id, body: notes.body, pinned: notes.pinned })
    .from(notes)
    .orderBy(notes.id)
    .watch()
    .subscribe((rows) => seen.push(rows));
  await commands.backendUpdate(id(3), { body: 'from the backend' });
  await commands.backendDelete(id(1));
  const afterBackend = [{ id: id(3), body: 'from the backend', pinned: false }, initial[3]!, initial[4]!];
  await until(
    () => JSON.stringify(seen.at(-1)) === JSON.stringify(afterBackend),
    "the backend's update and delete in the page's live query",
  );
  stopWatching();

  // Cut off, the page edits rows the Node client and the backend edit too; each step is stamped
  // after the one before it.
  await commands.cutConnection(true);
  await until(() => page.sync.status !== 'online', 'the page to notice it is offline');
  // Note 3: the page sets both columns, the Node client then the body: the newer body wins, the
  // page's pinned stays (per column).
  await page.db
    .update(notes)
    .set({ body: 'page, offline', pinned: true })
    .where(eq(notes.id, id(3)));
  // Note 4: deleted on the page, then edited by the Node client: the delete wins.
  await page.db.delete(notes).where(eq(notes.id, id(4)));
  await tick();
  await commands.nodeUpdate(id(3), { body: 'node, newer' });
  await commands.nodeUpdate(id(4), { body: 'node edits a row the page deleted' });
  // Note 5: the backend pins it, then the page edits its body: both stand.
  await commands.backendUpdate(id(5), { pinned: true });
  await tick();
  await page.db
    .update(notes)
    .set({ body: 'page, newest' })
    .where(eq(notes.id, id(5)));
  await commands.nodeSettle();

  await commands.setReachable();
  await until(() => page.sync.status === 'online', 'the page to reconnect');
  await page.settle();
  const server = await commands.serverNotes();
  expect(server).toEqual([
    { id: id(3), body: 'node, newer', pinned: true },
    { id: id(5), body: 'page, newest', pinned: true },
  ]);
  expect(await page.rows()).toEqual(server);
  const node = await commands.nodeSettle();
  expect(node.notes).toEqual(server);
  expect(node.errors).toEqual([]);
  expect(page.errors).toEqual([]);
  await page.close();
});

it('reconnects after its connection is cut, catching up on what it missed and pushing what it wrote', async () => {
  const page = await openPage('reconnect');
  await page.sync.start();
  await until(() => page.sync.status === 'online', 'the page to connect');
  let cuts = 0;

  // Cut while writes go on at both ends: the page reconnects at once.
  const onlines = () => page.statuses.filter((s) => s === 'online').length;
  for (let round = 0; round < 3; round++) {
    const before = onlines();
    const cut = await commands.cutConnection();
    expect(cut, `round ${round}: a connection was cut`).toBe(cuts + 1);
    cuts = cut;
    await commands.backendInsert(id(100 + round), `backend, round ${round}`);
    await page.db.insert(notes).values({ id: id(200 + round), body: `page, round ${round}` });
    // Back online on a new connection (the status may still read online from before the page
    // noticed the cut, on a loaded machine).
    await until(
      () => onlines() > before && page.sync.status === 'online',
      `the page to reconnect in round ${round}`,
    );
  }

  // Kept away for a while: both ends write meanwhile.
  await commands.cutConnection(true);
  await until(() => page.sync.status !== 'online', 'the page to notice it is offline');
  for (let n = 0; n < 20; n++) await commands.backendInsert(id(300 + n), `backend, while away ${n}`);
  await page.db
    .update(notes)
    .set({ pinned: true })
    .where(eq(notes.id, id(200)));
  await page.db.delete(notes).where(eq(notes.id, id(201)));
  await commands.backendUpdate(id(100), { body: 'backend, edited while away' });
  await commands.setReachable();
  await page.settle();

  const server = await commands.serverNotes();
  expect(server).toHaveLength(3 + 2 + 20);
  expect(server.find((n) => n.id === id(200))).toEqual({ id: id(200), body: 'page, round 0', pinned: true });
  expect(server.find((n) => n.id === id(100))?.body).toBe('backend, edited while away');
  expect(await page.rows()).toEqual(server);
  expect(
    page.statuses.filter((s) => s === 'online').length,
    'the page came back online after each cut',
  ).toBeGreaterThanOrEqual(5);
  expect(page.errors).toEqual([]);
  await page.close();
});
