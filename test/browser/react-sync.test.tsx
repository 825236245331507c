import { StrictMode } from 'react';
import { afterEach, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { render } from 'vitest-browser-react';
import { sqliteWasm } from '../../src/drivers/sqlite-wasm/index.js';
import { type Database, openDatabase } from '../../src/index.js';
import { SynclineProvider, useLiveQuery, useSyncProgress, useSyncStatus } from '../../src/react/index.js';
import { type SyncClient, syncClient } from '../../src/sync/client/index.js';
import { browserSyncSchema, notes } from './browser-sync-schema.js';

// The commands of test/browser/sync-commands.ts this file uses (sync-in-browser.test.ts lists them all).
declare module 'vitest/browser' {
  interface BrowserCommands {
    startSyncServer(): Promise<{ url: string; token: string }>;
    backendInsert(id: string, body: string): Promise<void>;
    cutConnection(refuse?: boolean): Promise<number>;
    setReachable(): Promise<void>;
    startNodeClient(): Promise<void>;
    nodeUpdate(id: string, set: { body?: string; pinned?: boolean }): Promise<void>;
    nodeSettle(): Promise<{ notes: { id: string; body: string; pinned: boolean }[]; errors: string[] }>;
    stopSyncServer(): Promise<void>;
  }
}

const id = (n: number) => `40000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;

let page: { db: Database<typeof browserSyncSchema>; sync: SyncClient } | undefined;

afterEach(async () => {
  await page?.sync.stop();
  await page?.db.close();
  page = undefined;
  await commands.stopSyncServer();
});

/** The page: SQLite WASM in memory and a sync client of the server the Node side started. */
async function openPage() {
  const { url, token } = await commands.startSyncServer();
  const db = await openDatabase(browserSyncSchema, sqliteWasm());
  const sync = syncClient(db, {
    url,
    token,
    shapes: [{ table: notes }],
    backoff: { initialMs: 10, maxMs: 100 },
  });
  page = { db, sync };
  return page;
}

/** How many listeners the client has for `event` (its emitter's own count). */
const listeners = (sync: SyncClient, event: 'status' | 'progress') =>
  (sync as unknown as { events: { listeners: Map<string, Set<unknown>> } }).events.listeners.get(event)
    ?.size ?? 0;

function SyncBadge() {
  return <p data-testid="status">{useSyncStatus()}</p>;
}

function SnapshotProgress() {
  const progress = useSyncProgress();
  return (
    <p data-testid="progress">{progress ? `${progress.rows} of ${progress.totalRows}` : 'no snapshot'}</p>
  );
}

function Notes() {
  const { data } = useLiveQuery((db) => db.select({ body: notes.body }).from(notes).orderBy(notes.id));
  return (
    <ul>
      {data?.map((note) => (
        <li key={note.body}>{note.body}</li>
      ))}
    </ul>
  );
}

it("shows the status and snapshot progress, and another client's write re-renders the page", async () => {
  const { db, sync } = await openPage();
  for (const n of [1, 2, 3]) await commands.backendInsert(id(n), `server note ${n}`);
  const screen = await render(
    <SynclineProvider db={db} sync={sync}>
      <SyncBadge />
      <SnapshotProgress />
      <Notes />
    </SynclineProvider>,
  );
  await expect.element(screen.getByTestId('status')).toHaveTextContent('offline');
  await expect.element(screen.getByTestId('progress')).toHaveTextContent('no snapshot');

  await sync.start();
  await expect.element(screen.getByTestId('status')).toHaveTextContent('online');
  await expect.element(screen.getByTestId('progress')).toHaveTextContent('3 of 3');
  await expect.element(screen.getByText('server note 3')).toBeInTheDocument();

  // A Node client (better-sqlite3) edits a note: through the server, the page's list re-renders.
  await commands.startNodeClient();
  await commands.nodeSettle();
  await commands.nodeUpdate(id(2), { body: 'edited by the Node client' });
  await commands.nodeSettle();
  await expect.element(screen.getByText('edited by the Node client')).toBeInTheDocument();
  expect(screen.getByText('server note 2').query()).toBeNull();

  // Cut off, the badge says so; let back in, it is online again.
  await commands.cutConnection(true);
  await expect.element(screen.getByTestId('status')).not.toHaveTextContent('online');
  await commands.setReachable();
  await expect.element(screen.getByTestId('status')).toHaveTextContent('online');

  await screen.unmount();
  expect(listeners(sync, 'status'), 'the badge stopped listening').toBe(0);
});

it('takes the client as an argument, and under StrictMode leaves no listener after unmount', async () => {
  const { sync } = await openPage();
  const before = listeners(sync, 'status');
  function Badge() {
    return <p data-testid="status">{useSyncStatus(sync)}</p>;
  }
  const screen = await render(
    <StrictMode>
      <Badge />
      <Badge />
    </StrictMode>,
  );
  expect(listeners(sync, 'status')).toBe(before + 2);
  await sync.start();
  await expect.poll(() => screen.getByText('online').all().length).toBe(2);
  await screen.unmount();
  expect(listeners(sync, 'status')).toBe(before);
});
