import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { lists, todos } from '../../examples/todo/schema.js';
import { startTodoServer, type TodoServer } from '../../examples/todo/server.js';
import { eq } from '../../src/index.js';
import { requireAll, requirements } from '../support/requirements.js';
import { launchChromium, SHOWS_WITHIN, TodoPage } from './todo-page.js';

// The todo app (examples/todo) end to end: its server on PGlite in a temporary folder, and two
// users' pages in headless Chromium, each in a browser context of its own (its own OPFS), each
// reaching the sync server through a TCP proxy it can be cut off by.

/** Selects the list Books and waits until it shows bob's two todos, the one he wrote offline too. */
async function showsBooks(page: TodoPage): Promise<void> {
  await page.selectList('Books');
  await expect
    .poll(() => page.todos(), SHOWS_WITHIN)
    .toEqual([
      { title: 'Dune', done: false },
      { title: 'Only on bob', done: false },
    ]);
}

// Each test is a story of many steps, each allowed SHOWS_WITHIN on a loaded machine.
describe.skipIf(!requirements.chromium.present && !requireAll)(
  'the todo app in Chromium',
  { timeout: 120_000 },
  () => {
    let dataDir: string;
    let app: TodoServer;
    let browser: Browser;
    let alice: TodoPage;
    let bob: TodoPage;

    beforeAll(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'syncline-todo-e2e-'));
      app = await startTodoServer({ port: 0, database: dataDir });
      browser = await launchChromium();
      alice = await TodoPage.open(browser, app.url, 'alice');
      bob = await TodoPage.open(browser, app.url, 'bob');
      await alice.waitOnline();
      await bob.waitOnline();
    });

    // An error the page threw (an uncaught exception, an unhandled rejection) fails the test it
    // happened in, even when what the page shows came out right.
    afterEach(() => {
      const thrown = { alice: alice?.takePageErrors() ?? [], bob: bob?.takePageErrors() ?? [] };
      expect(thrown, 'errors the pages threw').toEqual({ alice: [], bob: [] });
    });

    afterAll(async () => {
      await alice?.close();
      await bob?.close();
      await browser?.close();
      await app?.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('keeps its database in OPFS, in WAL mode with commits not flushed (edits reach the other page sooner)', async () => {
      for (const page of [alice, bob]) {
        expect(await page.storage()).toBe('OPFS');
        const mode = await page.page.evaluate(async () => {
          const { driver } = (window as any).todoApp;
          const pragma = async (name: string) =>
            (await driver.query({ sql: `PRAGMA ${name}`, params: [] })).rows;
          return [...(await pragma('journal_mode')), ...(await pragma('synchronous'))];
        });
        // WAL, not flushed at each commit (synchronous NORMAL): a commit waits for no OPFS flush.
        expect(mode).toEqual([{ journal_mode: 'wal' }, { synchronous: 1 }]);
      }
    });

    it("shows each page the other's edits", async () => {
      await alice.addList('Groceries');
      await alice.addTodo('Milk');
      await alice.addTodo('Bread');
      await bob.selectList('Groceries');
      await expect
        .poll(() => bob.todos(), SHOWS_WITHIN)
        .toEqual([
          { title: 'Milk', done: false },
          { title: 'Bread', done: false },
        ]);

      await bob.toggleTodo('Milk');
      await expect.poll(() => bob.openCount('Groceries'), SHOWS_WITHIN).toBe('1');
      // Alice's todo arrives while bob is typing a new name: his field stays, and so does his text.
      await bob.openTodoEditor('Bread');
      await bob.fillEditor('Rye bread');
      await alice.addTodo('Eggs');
      await expect.poll(() => bob.openCount('Groceries'), SHOWS_WITHIN).toBe('2');
      expect(await bob.editorValue()).toBe('Rye bread');
      await bob.saveEditor();
      await bob.renameList('Groceries', 'Shopping');
      const shopping = [
        { title: 'Milk', done: true },
        { title: 'Rye bread', done: false },
        { title: 'Eggs', done: false },
      ];
      await expect.poll(() => alice.todos(), SHOWS_WITHIN).toEqual(shopping);
      await expect.poll(() => bob.todos(), SHOWS_WITHIN).toEqual(shopping);
      await expect.poll(() => alice.listNames(), SHOWS_WITHIN).toContain('Shopping');

      await alice.deleteTodo('Rye bread');
      await expect
        .poll(() => bob.todos(), SHOWS_WITHIN)
        .toEqual([
          { title: 'Milk', done: true },
          { title: 'Eggs', done: false },
        ]);
    });

    it('keeps working offline and sends its edits once back online', async () => {
      await alice.addList('Trip');
      await alice.addTodo('Tickets');
      await bob.selectList('Trip');
      await expect.poll(() => bob.todos(), SHOWS_WITHIN).toEqual([{ title: 'Tickets', done: false }]);

      await bob.goOffline();
      // The sync connection really is gone: the server holds only alice's, and bob's page says so.
      await expect.poll(() => app.sync.connections, SHOWS_WITHIN).toBe(1);
      await expect.poll(() => bob.status(), SHOWS_WITHIN).not.toBe('online');

      await bob.addTodo('Passport');
      await bob.toggleTodo('Tickets');
      await bob.addList('Packing');
      await bob.addTodo('Socks');
      await alice.addTodo('Hotel');
      expect(await bob.listNames()).toContain('Packing');
      // His page counts them as waiting (sync.pending()), one per change he made.
      await expect.poll(() => bob.pendingWrites(), SHOWS_WITHIN).toBe('4 changes waiting');
      // Bob's edits are only on his page so far.
      const onServer = await app.sync.db.select({ title: todos.title }).from(todos);
      expect(onServer.map((t) => t.title)).not.toContain('Passport');

      await bob.goOnline();
      await bob.waitOnline();
      await expect.poll(() => bob.pendingWrites(), SHOWS_WITHIN).toBe('');
      await expect.poll(() => alice.listNames(), SHOWS_WITHIN).toContain('Packing');
      await expect
        .poll(() => alice.todos(), SHOWS_WITHIN)
        .toEqual([
          { title: 'Tickets', done: true },
          { title: 'Passport', done: false },
          { title: 'Hotel', done: false },
        ]);
      await bob.selectList('Trip');
      await expect.poll(() => bob.todos(), SHOWS_WITHIN).toEqual(await alice.todos());
    });

    it('says offline as soon as the browser goes offline, though its socket is still open, and online once back', async () => {
      await alice.addList('Garden');
      await alice.addTodo('Seeds');
      await alice.toggleTodo('Seeds');
      await alice.waitOnline();

      // DevTools' Offline: the offline event fires and fetches fail, the WebSocket stays open.
      await alice.browserOffline(true);
      await expect.poll(() => alice.status(), { timeout: 2000, interval: 50 }).toBe('offline');
      // "Clear completed" is a mutator: it clears the list here at once, offline too.
      await alice.clearCompleted();
      await expect.poll(() => alice.todos(), SHOWS_WITHIN).toEqual([]);
      expect(await alice.message()).toBe('Cleared the completed todos of Garden.');
      expect(await alice.status()).toBe('offline');
      // Its edits wait in its database, after the mutation.
      await alice.addTodo('Rake');

      await alice.browserOffline(false);
      await alice.waitOnline();
      await bob.selectList('Garden');
      await expect.poll(() => bob.todos(), SHOWS_WITHIN).toEqual([{ title: 'Rake', done: false }]);
      await expect.poll(() => alice.todos(), SHOWS_WITHIN).toEqual([{ title: 'Rake', done: false }]);
    });

    it('a request of its own that fails keeps the badge offline until the server answers again', async () => {
      await alice.waitOnline();
      await alice.recordShownNow();
      // The connection drops, and the page's own request for a token fails on the way.
      await alice.page.route('**/api/token*', (route) => route.abort('internetdisconnected'));
      alice.proxy.cutAll();
      await expect.poll(() => alice.status(), SHOWS_WITHIN).toBe('offline');
      // Retrying meanwhile: each attempt's token request fails, and the badge stays offline.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await alice.status()).toBe('offline');
      await alice.page.unroute('**/api/token*');
      await alice.waitOnline();
      const { status } = await alice.shown();
      expect(status[0]).toBe('online');
      expect(status).toContain('offline');
      expect(status.at(-1)).toBe('online');
    });

    it("shows both pages the backend's own writes", async () => {
      await alice.addList('Chores');
      await alice.addTodo('Dishes');
      await alice.addTodo('Laundry');
      await alice.addTodo('Vacuum');
      await alice.toggleTodo('Dishes');
      await bob.selectList('Chores');
      await bob.toggleTodo('Vacuum');
      await expect
        .poll(() => alice.todos(), SHOWS_WITHIN)
        .toEqual([
          { title: 'Dishes', done: true },
          { title: 'Laundry', done: false },
          { title: 'Vacuum', done: true },
        ]);

      // Another list's done todo, which "Clear completed" in Chores' header leaves alone.
      await alice.addList('Errands');
      await alice.addTodo('Post office');
      await alice.toggleTodo('Post office');
      await alice.selectList('Chores');

      // The clearCompleted mutator: alice's page runs it, then the server's code runs it on PostgreSQL.
      await alice.clearCompleted();
      for (const page of [alice, bob]) {
        await expect.poll(() => page.todos(), SHOWS_WITHIN).toEqual([{ title: 'Laundry', done: false }]);
      }
      expect(await alice.message()).toBe('Cleared the completed todos of Chores.');
      await bob.selectList('Errands');
      await expect.poll(() => bob.todos(), SHOWS_WITHIN).toEqual([{ title: 'Post office', done: true }]);
      // On the server too: other lists keep their done todos (Milk and Tickets from earlier tests).
      const done = await app.sync.db.select({ title: todos.title }).from(todos).where(eq(todos.done, true));
      expect(done.map((t) => t.title)).toEqual(expect.arrayContaining(['Post office', 'Milk', 'Tickets']));
      expect(done.map((t) => t.title)).not.toContain('Dishes');
      await bob.selectList('Chores');

      // And an insert made through the server's Database.
      const [chores] = await app.sync.db.select().from(lists).where(eq(lists.name, 'Chores'));
      await app.sync.db.insert(todos).values({ listId: chores!.id, title: 'Windows' });
      for (const page of [alice, bob]) {
        await expect
          .poll(() => page.todos(), SHOWS_WITHIN)
          .toEqual([
            { title: 'Laundry', done: false },
            { title: 'Windows', done: false },
          ]);
      }
    });

    it('after a reload, shows its data from its own database at once, saying connecting (not offline) until it is online', async () => {
      await alice.addList('Reading');
      await alice.addTodo('Essays');
      await alice.waitOnline();
      await alice.recordShown();
      // The token (asked before each connection) comes late, so the page is still connecting
      // well after its data could show.
      await alice.page.route('**/api/token*', async (route) => {
        await new Promise((resolve) => setTimeout(resolve, 3000));
        await route.continue();
      });
      await alice.page.reload();
      await expect.poll(() => alice.todos(), SHOWS_WITHIN).toEqual([{ title: 'Essays', done: false }]);
      expect(await alice.status()).toBe('connecting');
      expect(await alice.page.locator('#list-title').textContent()).toBe('Reading');
      await alice.waitOnline();
      await alice.page.unroute('**/api/token*');
      const shown = await alice.shown();
      expect(shown.status).toEqual(['connecting', 'online']);
      expect(shown.title.filter((t) => t !== 'Loading…')).toEqual(['Reading']);
    });

    it('keeps the data across a reload, edits made offline included', async () => {
      await bob.addList('Books');
      await bob.addTodo('Dune');
      await expect.poll(() => alice.listNames(), SHOWS_WITHIN).toContain('Books');

      // Cut from the sync server (the page itself still loads), bob writes a todo only his
      // SQLite has, then reloads: what the page shows comes from OPFS.
      bob.proxy.setRefusing(true);
      await expect.poll(() => bob.status(), SHOWS_WITHIN).not.toBe('online');
      await bob.addTodo('Only on bob');
      await bob.reload();
      expect(await bob.storage()).toBe('OPFS');
      await showsBooks(bob);
      expect(await bob.status()).not.toBe('online');

      bob.proxy.setRefusing(false);
      await bob.waitOnline();
      await showsBooks(alice);
    });

    it('reloads while the browser is offline, from the app shell its service worker kept', async () => {
      await bob.waitOfflineReady();
      await bob.goOffline();
      await bob.reload();
      expect(await bob.storage()).toBe('OPFS');
      await showsBooks(bob);
      expect(await bob.status()).toBe('offline');

      await bob.addTodo('Written offline');
      await bob.goOnline();
      await bob.waitOnline();
      await alice.selectList('Books');
      await expect
        .poll(() => alice.todos(), SHOWS_WITHIN)
        .toContainEqual({ title: 'Written offline', done: false });
    });
  },
);
