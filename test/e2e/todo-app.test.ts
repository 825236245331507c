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

    it('keeps its database in OPFS', async () => {
      expect(await alice.storage()).toBe('OPFS');
      expect(await bob.storage()).toBe('OPFS');
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
      // Bob's edits are only on his page so far.
      const onServer = await app.sync.db.select({ title: todos.title }).from(todos);
      expect(onServer.map((t) => t.title)).not.toContain('Passport');

      await bob.goOnline();
      await bob.waitOnline();
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

      // POST /api/clear-completed: a delete the server's code makes on PostgreSQL.
      await alice.clearCompleted();
      for (const page of [alice, bob]) {
        await expect.poll(() => page.todos(), SHOWS_WITHIN).toEqual([{ title: 'Laundry', done: false }]);
      }

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

    it('keeps the data across a reload, edits made offline included', async () => {
      await bob.addList('Books');
      await bob.addTodo('Dune');
      await expect.poll(() => alice.listNames(), SHOWS_WITHIN).toContain('Books');

      // Cut from the sync server (the page itself still loads), bob writes a todo only his
      // SQLite has, then reloads: what the page shows comes from OPFS.
      bob.proxy.setRefusing(true);
      await expect.poll(() => bob.status(), SHOWS_WITHIN).not.toBe('online');
      await bob.addTodo('Only on bob');
      await bob.page.reload();
      await bob.page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 30_000 });
      expect(await bob.storage()).toBe('OPFS');
      await bob.selectList('Books');
      await expect
        .poll(() => bob.todos(), SHOWS_WITHIN)
        .toEqual([
          { title: 'Dune', done: false },
          { title: 'Only on bob', done: false },
        ]);
      expect(await bob.status()).not.toBe('online');

      bob.proxy.setRefusing(false);
      await bob.waitOnline();
      await alice.selectList('Books');
      await expect
        .poll(() => alice.todos(), SHOWS_WITHIN)
        .toEqual([
          { title: 'Dune', done: false },
          { title: 'Only on bob', done: false },
        ]);
    });
  },
);
