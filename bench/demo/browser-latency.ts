/**
 * `npm run bench:browser`: how long an edit on one user's todo page takes to show on another
 * user's page, on loopback, against the same server's Node-client latency measured in the same
 * run. The todo server (examples/todo/server.ts) runs in this process on PGlite in a temporary
 * folder (or on the PostgreSQL that DATABASE_URL names); two users' pages run in headless
 * Chromium (CHROMIUM_PATH, else /usr/bin/chromium), twice: each in a Chromium of its own on a
 * profile on disk, as two users' browsers, then in two off-the-record contexts of one Chromium, as
 * the e2e tests run them (there OPFS is kept by the browser process, and every read and write of
 * a page's database crosses to it: commits cost more).
 *
 * Browser: alice's page clicks a todo's checkbox (the page's own handler writes it to SQLite WASM
 * in its worker, the sync client pushes it); timed from the click to the moment bob's page shows
 * the todo ticked (a MutationObserver on his list). Both timestamps are taken in the pages, on the
 * same clock. Each edit is also split at alice's push leaving her WebSocket and bob's `changes`
 * arriving on his (write → push sent, push → changes received: the server, and received → DOM).
 *
 * Node baseline: two sync clients on in-memory better-sqlite3 connected to the same server through
 * the same /sync endpoint; one updates a todo, timed until the other's live query re-emits it.
 *
 * Edits are sequential, alternately ticking and unticking. BENCH_BROWSER_EDITS (default 60) edits
 * are timed on each side after 10 untimed ones. Target: browser p50 under 30 ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { BrowserContext, Page } from 'playwright-core';
import WebSocket from 'ws';
import { lists, todoSchema, todos } from '../../examples/todo/schema.js';
import { startTodoServer, type TodoServer } from '../../examples/todo/server.js';
import { demoToken } from '../../examples/todo/todo-api.js';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { eq, openDatabase } from '../../src/index.js';
import { syncClient } from '../../src/sync/client/index.js';
import { launchChromium, launchChromiumProfile } from '../../test/e2e/todo-page.js';
import { quantile } from '../support/measure.js';
import { formatMs, formatOutcomes, type Outcome } from '../sync/outcome.js';

const EDITS = Number(process.env.BENCH_BROWSER_EDITS ?? 60);
const WARMUP = 10;
const TARGET_MS = 30;
const DEMO_SECRET = 'syncline-todo-demo-secret-not-for-production';

// Run in each page before its own scripts: timestamps of the sync WebSocket's frames (push sent,
// changes received) and a shim for the helper names tsx adds to functions passed to evaluate().
const PAGE_PROBE = `(() => {
  window.__name = (f) => f;
  const frames = (window.benchFrames = []);
  const now = () => performance.timeOrigin + performance.now();
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === 'string' && data.startsWith('{"type":"push"')) frames.push(['push', now()]);
    return send.call(this, data);
  };
  const Base = WebSocket;
  window.WebSocket = class extends Base {
    constructor(url, protocols) {
      super(url, protocols);
      this.addEventListener('message', (event) => {
        if (typeof event.data === 'string' && event.data.startsWith('{"type":"changes"')) frames.push(['changes', now()]);
      });
    }
  };
})()`;

interface Split {
  readonly total: number;
  readonly toPush: number;
  readonly server: number;
  readonly toDom: number;
}

async function openPage(server: TodoServer, context: BrowserContext, user: string): Promise<Page> {
  await context.addInitScript({ content: PAGE_PROBE });
  const page = await context.newPage();
  await page.goto(`${server.url}?user=${user}`);
  await page.waitForFunction(() => document.getElementById('sync-status')?.textContent === 'online', null, {
    timeout: 60_000,
  });
  return page;
}

/**
 * Two users' pages: each in a Chromium of its own on a profile on disk (`profile`), as two users'
 * browsers; or in two off-the-record contexts of one Chromium (`incognito`), as the e2e tests run.
 */
async function openPages(server: TodoServer, mode: 'profile' | 'incognito') {
  const closers: (() => Promise<void>)[] = [];
  const contexts: BrowserContext[] = [];
  if (mode === 'profile') {
    for (let i = 0; i < 2; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'syncline-bench-profile-'));
      const context = await launchChromiumProfile(dir);
      contexts.push(context);
      closers.push(async () => {
        await context.close();
        rmSync(dir, { recursive: true, force: true });
      });
    }
  } else {
    const browser = await launchChromium();
    closers.push(() => browser.close());
    contexts.push(await browser.newContext(), await browser.newContext());
  }
  const close = () => Promise.all(closers.map((c) => c())).then(() => {});
  try {
    const alice = await openPage(server, contexts[0]!, 'alice');
    const bob = await openPage(server, contexts[1]!, 'bob');
    return { alice, bob, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Bob's page resolves `benchSeen` with the time his list first shows the todo as `done`. */
function watchFor(page: Page, done: boolean): Promise<void> {
  return page.evaluate((done) => {
    const shows = () => document.querySelector('#todos li')?.classList.contains('done') === done;
    (window as any).benchSeen = new Promise<number>((resolve) => {
      const observer = new MutationObserver(() => {
        if (!shows()) return;
        observer.disconnect();
        resolve(performance.timeOrigin + performance.now());
      });
      observer.observe(document.getElementById('todos')!, {
        childList: true,
        subtree: true,
        attributes: true,
      });
    });
  }, done);
}

async function browserEdit(alice: Page, bob: Page, done: boolean): Promise<Split> {
  await watchFor(bob, done);
  await Promise.all([alice, bob].map((p) => p.evaluate(() => (window as any).benchFrames.splice(0))));
  const start = await alice.evaluate(() => {
    const t = performance.timeOrigin + performance.now();
    document.querySelector<HTMLInputElement>('#todos .todo-done')!.click();
    return t;
  });
  const seen = await bob.evaluate(() => (window as any).benchSeen as Promise<number>);
  const first = async (page: Page, kind: string) =>
    (await page.evaluate(() => (window as any).benchFrames as [string, number][])).find(
      ([k, at]) => k === kind && at >= start,
    )?.[1] ?? Number.NaN;
  const pushed = await first(alice, 'push');
  const received = await first(bob, 'changes');
  return { total: seen - start, toPush: pushed - start, server: received - pushed, toDom: seen - received };
}

async function nodeLatencies(url: string): Promise<number[]> {
  const open = async (user: string) => {
    const db = await openDatabase(todoSchema, sqlite({ database: new BetterSqlite3(':memory:') }));
    const secret = process.env.JWT_SECRET ?? DEMO_SECRET;
    const sync = syncClient(db, { url, token: () => demoToken(user, secret), WebSocket: WebSocket as never });
    await sync.start();
    await sync.caughtUp();
    return { db, sync };
  };
  const a = await open('node-a');
  const b = await open('node-b');
  const [list] = await a.db.insert(lists).values({ name: 'node bench', createdBy: 'node-a' }).returning();
  const [todo] = await a.db.insert(todos).values({ listId: list!.id, title: 'node' }).returning();
  let want: boolean | undefined;
  let seen: (() => void) | undefined;
  const stop = b.db
    .select()
    .from(todos)
    .where(eq(todos.id, todo!.id))
    .watch()
    .subscribe((rows) => {
      if (rows[0]?.done === want) seen?.();
    });
  const times: number[] = [];
  for (let i = 0; i < WARMUP + EDITS; i++) {
    want = i % 2 === 0;
    const shown = new Promise<void>((resolve) => (seen = resolve));
    const start = performance.now();
    await a.db.update(todos).set({ done: want }).where(eq(todos.id, todo!.id));
    await shown;
    if (i >= WARMUP) times.push(performance.now() - start);
  }
  stop();
  await Promise.all([a.sync.stop(), b.sync.stop()]);
  await Promise.all([a.db.close(), b.db.close()]);
  return times;
}

const line = (values: readonly number[]) =>
  `p50 ${formatMs(quantile(values, 0.5))}, p99 ${formatMs(quantile(values, 0.99))}`;

async function measureBrowser(
  server: TodoServer,
  mode: 'profile' | 'incognito',
  list: string,
): Promise<Split[]> {
  const { alice, bob, close } = await openPages(server, mode);
  try {
    await alice.fill('#new-list', list);
    await alice.press('#new-list', 'Enter');
    await alice.locator('#list-title', { hasText: list }).waitFor({ timeout: 30_000 });
    await alice.fill('#new-todo', 'Tick me');
    await alice.press('#new-todo', 'Enter');
    await bob.locator('#lists li', { hasText: list }).click({ timeout: 30_000 });
    await bob.locator('#todos li', { hasText: 'Tick me' }).waitFor({ timeout: 30_000 });
    const splits: Split[] = [];
    for (let i = 0; i < WARMUP + EDITS; i++) {
      const split = await browserEdit(alice, bob, i % 2 === 0);
      if (i >= WARMUP) splits.push(split);
    }
    return splits;
  } finally {
    await close();
  }
}

const dataDir = process.env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'syncline-bench-browser-'));
const server = await startTodoServer({ port: 0, database: process.env.DATABASE_URL ?? dataDir });
try {
  console.log(`todo server on ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'} at ${server.url}`);
  const node = await nodeLatencies(`ws://127.0.0.1:${server.port}/sync`);
  const nodeP50 = quantile(node, 0.5);
  const outcomes: Outcome[] = [];
  for (const [mode, what] of [
    ['profile', 'two Chromiums on profiles on disk'],
    ['incognito', 'two incognito contexts of one Chromium'],
  ] as const) {
    const splits = await measureBrowser(server, mode, `Bench ${mode}`);
    const total = splits.map((s) => s.total);
    const p50 = quantile(total, 0.5);
    const median = (pick: (s: Split) => number) => formatMs(quantile(splits.map(pick), 0.5));
    console.log(
      `${what}: split at the medians, write → push sent ${median((s) => s.toPush)}, ` +
        `push → changes received ${median((s) => s.server)}, received → DOM ${median((s) => s.toDom)}`,
    );
    outcomes.push({
      measurement: `browser latency: edit → other page's DOM (${EDITS} edits, ${what}, loopback)`,
      result: line(total),
      baseline: `Node clients, same server: ${line(node)}`,
      ratio: `${(p50 / nodeP50).toFixed(1)}x`,
      target: `p50 < ${TARGET_MS} ms`,
      met: p50 < TARGET_MS,
    });
  }
  console.log(formatOutcomes(outcomes));
} finally {
  await server.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
