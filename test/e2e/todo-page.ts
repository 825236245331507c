import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/** Where the tests find Chromium: CHROMIUM_PATH, else Debian's package (.ci/run installs it). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches the system's headless Chromium through playwright-core, failing with what to install
 * when it is not there.
 *
 * @example
 *   const browser = await launchChromium();
 */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_FLAGS });
}

function chromiumPath(): string {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `the todo app's end-to-end tests need Chromium at ${CHROMIUM_PATH}: install it (apt-get install chromium) or set CHROMIUM_PATH`,
    );
  }
  return CHROMIUM_PATH;
}

/**
 * Launches Chromium on a profile kept in `userDataDir`, as a user's own browser runs (the
 * contexts of `launchChromium()` are off the record: their OPFS lives in the browser process,
 * and every read and write of a page's database goes there and back).
 *
 * @example
 *   const context = await launchChromiumProfile(mkdtempSync(join(tmpdir(), 'profile-')));
 */
export async function launchChromiumProfile(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath(),
    args: CHROMIUM_FLAGS,
  });
}

/** How long a change may take to show on a page (it crosses a WebSocket, PostgreSQL and another). */
export const SHOWS_WITHIN = { timeout: 15_000, interval: 100 };

/**
 * One user's todo page in a browser context of its own (its own OPFS and local storage). Its sync
 * WebSocket goes through a TCP proxy of its own: `goOffline()` takes the whole context offline
 * (fetches fail) and cuts and refuses that WebSocket, which Chromium's offline emulation leaves open.
 *
 * @example
 *   const alice = await TodoPage.open(browser, app.url, 'alice');
 *   await alice.addList('Groceries');
 *   await alice.addTodo('Milk');
 *   await expect.poll(() => bob.todos(), SHOWS_WITHIN).toEqual([{ title: 'Milk', done: false }]);
 */
export class TodoPage {
  /**
   * Every uncaught error and unhandled rejection the page threw, with its stack (Playwright's
   * `pageerror`), across reloads. The tests fail on any (`takePageErrors()` after each test).
   */
  readonly pageErrors: string[] = [];

  private constructor(
    readonly page: Page,
    readonly context: BrowserContext,
    readonly proxy: TcpProxy,
    private readonly url: string,
  ) {
    page.on('pageerror', (error) => this.pageErrors.push(error.stack ?? error.message));
  }

  static async open(browser: Browser, appUrl: string, user: string): Promise<TodoPage> {
    const { port } = new URL(appUrl);
    const proxy = await startTcpProxy(Number(port));
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    // A click or a fill that cannot happen fails with what it waited for, not with the test's timeout.
    context.setDefaultTimeout(SHOWS_WITHIN.timeout);
    const page = await context.newPage();
    const url = `${appUrl}?user=${user}&sync=${encodeURIComponent(`ws://127.0.0.1:${proxy.port}/sync`)}`;
    const todoPage = new TodoPage(page, context, proxy, url);
    await todoPage.load();
    return todoPage;
  }

  /** Loads (or reloads) the page and waits until it has opened its database. */
  async load(): Promise<void> {
    await this.page.goto(this.url);
    await this.page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 30_000 });
  }

  /** Reloads the page and waits until it has opened its database again. */
  async reload(): Promise<void> {
    await this.page.reload();
    await this.page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 30_000 });
  }

  /** The page errors since the last call (see `pageErrors`), which it empties. */
  takePageErrors(): string[] {
    return this.pageErrors.splice(0);
  }

  async close(): Promise<void> {
    await this.context.close();
    await this.proxy.close();
  }

  /** The sync badge: 'online', 'connecting' or 'offline'. */
  /** The header's "N changes waiting" badge, or '' when nothing waits. */
  async pendingWrites(): Promise<string> {
    const badge = this.page.getByTestId('pending-writes');
    return (await badge.count()) === 0 ? '' : ((await badge.textContent()) ?? '');
  }

  status(): Promise<string | null> {
    return this.page.locator('#sync-status').textContent();
  }

  /** The storage badge: 'OPFS' or 'memory'. */
  storage(): Promise<string | null> {
    return this.page.locator('#storage').textContent();
  }

  async waitOnline(): Promise<void> {
    await this.page.waitForFunction(
      () => document.getElementById('sync-status')?.textContent === 'online',
      null,
      {
        timeout: SHOWS_WITHIN.timeout,
      },
    );
  }

  /** Takes the page off the network: fetches fail, its sync WebSocket is cut and refused. */
  async goOffline(): Promise<void> {
    await this.context.setOffline(true);
    this.proxy.setRefusing(true);
  }

  async goOnline(): Promise<void> {
    this.proxy.setRefusing(false);
    await this.context.setOffline(false);
  }

  listNames(): Promise<string[]> {
    return this.page.locator('#lists .list-name').allTextContents();
  }

  /** The todos shown for the selected list, in order. */
  todos(): Promise<{ title: string; done: boolean }[]> {
    return this.page.$$eval('#todos li', (items) =>
      items.map((li) => ({
        title: li.querySelector('.todo-title')?.textContent ?? '',
        done: li.classList.contains('done'),
      })),
    );
  }

  async addList(name: string): Promise<void> {
    await this.page.fill('#new-list', name);
    await this.page.press('#new-list', 'Enter');
    await expect.poll(() => this.page.locator('#list-title').textContent(), SHOWS_WITHIN).toBe(name);
  }

  /** Selects a list by name (waiting until it has arrived on this page). */
  async selectList(name: string): Promise<void> {
    await this.listItem(name).click({ timeout: SHOWS_WITHIN.timeout });
    await expect.poll(() => this.page.locator('#list-title').textContent(), SHOWS_WITHIN).toBe(name);
  }

  async renameList(name: string, to: string): Promise<void> {
    await this.doubleClickOpens(this.listItem(name).locator('.list-name'), '#lists .inline-edit');
    await this.fillEditor(to);
    await this.saveEditor();
  }

  async addTodo(title: string): Promise<void> {
    await this.page.fill('#new-todo', title);
    await this.page.press('#new-todo', 'Enter');
    await this.todoItem(title).waitFor({ timeout: SHOWS_WITHIN.timeout });
  }

  /** Ticks or unticks a todo, and waits until the page shows it. */
  async toggleTodo(title: string): Promise<void> {
    const item = this.todoItem(title);
    const wasDone = ((await item.getAttribute('class')) ?? '').split(' ').includes('done');
    await item.locator('.todo-done').click();
    await expect
      .poll(async () => ((await item.getAttribute('class')) ?? '').split(' ').includes('done'), SHOWS_WITHIN)
      .toBe(!wasDone);
  }

  async renameTodo(title: string, to: string): Promise<void> {
    await this.openTodoEditor(title);
    await this.fillEditor(to);
    await this.saveEditor();
  }

  /** Double-clicks a todo's title, which opens its rename field. */
  async openTodoEditor(title: string): Promise<void> {
    await this.doubleClickOpens(this.todoItem(title).locator('.todo-title'), '#todos .inline-edit');
  }

  /** Types into the open rename field, without saving yet. */
  async fillEditor(text: string): Promise<void> {
    await this.page.fill('.inline-edit', text);
  }

  /** What the open rename field holds. */
  editorValue(): Promise<string> {
    return this.page.inputValue('.inline-edit');
  }

  /** Presses Enter in the open rename field, which saves it. */
  async saveEditor(): Promise<void> {
    await this.page.press('.inline-edit', 'Enter');
  }

  /** The count of open todos shown next to a list's name ('' when none). */
  openCount(list: string): Promise<string | null> {
    return this.listItem(list).locator('.open-count').textContent();
  }

  async deleteTodo(title: string): Promise<void> {
    await this.todoItem(title).locator('.todo-delete').click();
  }

  /**
   * Clicks "Clear completed" (the clearCompleted mutator: the selected list's done todos go here
   * at once, and on the server once pushed) and waits until the page says it cleared them.
   */
  async clearCompleted(): Promise<void> {
    await this.page.click('#clear-completed');
    await expect.poll(() => this.message(), SHOWS_WITHIN).toMatch(/^Cleared the completed todos of /);
  }

  /** The page's message line (what the last action said). */
  message(): Promise<string | null> {
    return this.page.locator('#message').textContent();
  }

  /**
   * Takes only the browser offline, as DevTools' Offline does: fetches fail and the offline event
   * fires, but the open sync WebSocket is left as it is (no proxy cut).
   */
  async browserOffline(offline: boolean): Promise<void> {
    await this.context.setOffline(offline);
  }

  /**
   * From the next load on, records every text the sync badge and the list title show, from the
   * first paint (`shown()` reads them).
   */
  async recordShown(): Promise<void> {
    await this.page.addInitScript(recordShownInPage);
  }

  /** Records what the badge and the title show from now on, in this page as it is. */
  async recordShownNow(): Promise<void> {
    await this.page.evaluate(recordShownInPage);
  }

  /** What the badge and the title showed since `recordShown` or `recordShownNow`, in order. */
  shown(): Promise<{ status: string[]; title: string[] }> {
    return this.page.evaluate(
      () => (window as unknown as { shown: { status: string[]; title: string[] } }).shown,
    );
  }

  /** Waits until the service worker has kept the app shell (the page's `data-offline-ready`). */
  async waitOfflineReady(): Promise<void> {
    await this.page.waitForFunction(() => document.body.dataset.offlineReady === 'true', null, {
      timeout: 60_000,
    });
  }

  /**
   * Double-clicks `target` until `opened` shows. A live query re-rendering the list between the
   * two clicks of a double-click (a sync change arriving) swallows it, as it would a user's.
   */
  private async doubleClickOpens(target: Locator, opened: string): Promise<void> {
    const deadline = Date.now() + SHOWS_WITHIN.timeout;
    for (;;) {
      await target.dblclick();
      try {
        await this.page.locator(opened).waitFor({ timeout: 1000 });
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
  }

  private listItem(name: string): Locator {
    return this.page
      .locator('#lists li')
      .filter({ has: this.page.locator('.list-name', { hasText: exactly(name) }) });
  }

  private todoItem(title: string): Locator {
    return this.page
      .locator('#todos li')
      .filter({ has: this.page.locator('.todo-title', { hasText: exactly(title) }) });
  }
}

/** Runs in the page: notes each new text of the sync badge and the list title in `window.shown`. */
function recordShownInPage(): void {
  const seen: { status: string[]; title: string[] } = { status: [], title: [] };
  (window as unknown as { shown: typeof seen }).shown = seen;
  const note = () => {
    const status = document.getElementById('sync-status')?.textContent ?? '';
    const title = document.getElementById('list-title')?.textContent ?? '';
    if (status && seen.status.at(-1) !== status) seen.status.push(status);
    if (title && seen.title.at(-1) !== title) seen.title.push(title);
  };
  note();
  new MutationObserver(note).observe(document, { childList: true, subtree: true, characterData: true });
}

function exactly(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}
