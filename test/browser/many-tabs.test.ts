import { expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { noteId, TabApp } from './tabs/tab-app.js';

// Two tabs of one origin open one database name: the test's page and a page it opens (tab.html),
// in the same browser context. See src/drivers/sqlite-wasm/shared-database.ts.
type TabCommands = {
  openTab(key: string): Promise<void>;
  tabCall(key: string, method: string, ...args: unknown[]): Promise<any>;
  closeTab(key: string): Promise<void>;
};
const tabs = commands as unknown as TabCommands;

function uniqueName(what: string): string {
  return `${what}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}.db`;
}

it('shares one database between two tabs: live queries see the other tab, and the second tab takes over when the owner closes, keeping every write', async () => {
  const name = uniqueName('shared');
  await tabs.openTab('a');
  await tabs.tabCall('a', 'open', name);
  expect(await tabs.tabCall('a', 'owns')).toBe(true);

  const b = new TabApp();
  await b.open(name);
  expect(b.owns()).toBe(false);
  expect(b.storage()).toBe('opfs');

  // A write in either tab reaches the other's live query.
  await tabs.tabCall('a', 'insert', 1, 'from a');
  await expect.poll(() => b.latest()).toEqual(['from a']);
  await b.insert(2, 'from b');
  await expect.poll(() => tabs.tabCall('a', 'latest')).toEqual(['from a', 'from b']);

  // Transactions of both tabs take turns on the one connection.
  const [inB, inA] = await Promise.all([
    b.twoInOneTransaction(10, 'tx b'),
    tabs.tabCall('a', 'twoInOneTransaction', 20, 'tx a'),
  ]);
  expect([inB, inA].sort()).toEqual([4, 6]);

  // Both tabs write while the owning tab closes.
  b.startInserts(100, 400, 'b');
  await tabs.tabCall('a', 'startInserts', 1000, 1300, 'a');
  await expect.poll(() => b.acknowledged.length, { timeout: 20_000 }).toBeGreaterThan(30);
  const aBefore: number[] = await tabs.tabCall('a', 'acknowledgedSoFar');
  await tabs.closeTab('a');

  const { acknowledged, failed } = await b.insertsDone();
  expect(b.owns()).toBe(true);
  // A write in flight at the old owner when it closed fails, saying so; every other succeeded.
  expect(acknowledged.length + failed.length).toBe(300);
  expect(failed.length).toBeLessThanOrEqual(1);
  for (const message of failed) expect(message).toMatch(/closed before it answered/);

  const bodies = new Set(await b.bodies());
  for (const n of acknowledged) expect(bodies.has(`b${n}`)).toBe(true);
  expect(aBefore.length).toBeGreaterThan(0);
  for (const n of aBefore) expect(bodies.has(`a${n}`)).toBe(true);
  for (const body of ['from a', 'from b', 'tx a', 'tx b']) expect(bodies.has(body)).toBe(true);
  // The live query follows the new owner's writes too.
  await b.insert(5000, 'after');
  await expect.poll(() => b.latest().includes('after')).toBe(true);
  expect(b.latest()).toEqual(await b.bodies());
  await b.close();
});

it('a tab that closes while its transaction holds the connection frees it, and its writes are rolled back', async () => {
  const name = uniqueName('held');
  const b = new TabApp();
  await b.open(name);
  expect(b.owns()).toBe(true);

  await tabs.openTab('held');
  await tabs.tabCall('held', 'open', name);
  expect(await tabs.tabCall('held', 'owns')).toBe(false);
  await tabs.tabCall('held', 'holdTransaction', 7);

  // The owner's own write waits for the other tab's transaction ...
  let written = false;
  const write = b.insert(8, 'from the owner').then(() => {
    written = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(written).toBe(false);
  // ... until that tab closes: then it runs, and the transaction's insert is gone.
  await tabs.closeTab('held');
  await write;
  expect(await b.bodies()).toEqual(['from the owner']);
  await b.close();
});

type SyncCommands = {
  startSyncServer(): Promise<{ url: string; token: string }>;
  serverNotes(): Promise<{ id: string; body: string }[]>;
  backendInsert(id: string, body: string): Promise<void>;
  stopSyncServer(): Promise<void>;
};
const server = commands as unknown as SyncCommands;

it('one tab syncs for both; when it closes mid-sync the other takes the connection, and every write reaches the server', async () => {
  const sync = await server.startSyncServer();
  const name = uniqueName('synced');
  await tabs.openTab('leader');
  await tabs.tabCall('leader', 'open', name, sync);
  expect(await tabs.tabCall('leader', 'ownsConnection')).toBe(true);

  const b = new TabApp();
  await b.open(name, sync);
  expect(b.ownsConnection()).toBe(false);
  await expect.poll(() => b.syncStatus()).toBe('online');

  // The follower's writes go out through the syncing tab; flush() waits for their ack.
  await b.insert(1, 'written in b');
  await b.flush();
  expect((await server.serverNotes()).map((n) => n.body)).toContain('written in b');
  // The server's rows reach the follower's live query.
  await server.backendInsert(noteId(2), 'from the backend');
  await b.caughtUp();
  await expect.poll(() => b.latest()).toContain('from the backend');

  // Both write while the syncing tab closes.
  b.startInserts(100, 300, 'b');
  await tabs.tabCall('leader', 'startInserts', 1000, 1200, 'a');
  await expect.poll(() => b.acknowledged.length, { timeout: 20_000 }).toBeGreaterThan(20);
  const aBefore: number[] = await tabs.tabCall('leader', 'acknowledgedSoFar');
  await tabs.closeTab('leader');

  const { acknowledged } = await b.insertsDone();
  await expect.poll(() => b.ownsConnection(), { timeout: 20_000 }).toBe(true);
  await expect.poll(() => b.syncStatus(), { timeout: 20_000 }).toBe('online');
  await b.flush();
  const onServer = new Set((await server.serverNotes()).map((n) => n.body));
  for (const n of acknowledged) expect(onServer.has(`b${n}`)).toBe(true);
  for (const n of aBefore) expect(onServer.has(`a${n}`)).toBe(true);
  // What the server has, the tab has.
  await b.caughtUp();
  expect(new Set(await b.bodies())).toEqual(onServer);
  await b.close();
  await server.stopSyncServer();
});
