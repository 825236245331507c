import type { Page } from 'playwright';
import type { BrowserCommand } from 'vitest/node';

// Commands that open other tabs of the test's origin in the same browser context (so they share
// its OPFS, Web Locks and BroadcastChannels), call into their TabApp, and close them as a user
// closes a tab.
const tabs = new Map<string, Page>();

function opened(key: string): Page {
  const page = tabs.get(key);
  if (!page) throw new Error(`no tab ${key}: openTab('${key}') first`);
  return page;
}

/** Opens test/browser/tabs/tab.html in a new page of the test's browser context. */
const openTab: BrowserCommand<[key: string]> = async (context, key) => {
  const origin = new URL(context.page.url()).origin;
  const page = await context.context.newPage();
  tabs.set(key, page);
  await page.goto(`${origin}/test/browser/tabs/tab.html`);
  await page.waitForFunction(() => 'tab' in window);
};

/** Calls a method of the tab's TabApp with JSON arguments; its result comes back as JSON. */
const tabCall: BrowserCommand<[key: string, method: string, ...args: unknown[]]> = async (
  _context,
  key,
  method,
  ...args
) =>
  opened(key).evaluate(
    ([name, values]) => {
      const app = (window as unknown as { tab: Record<string, (...a: unknown[]) => unknown> }).tab;
      return app[name as string](...(values as unknown[]));
    },
    [method, args] as const,
  );

/** Closes the tab as its user would (its workers end, its locks come free). */
const closeTab: BrowserCommand<[key: string]> = async (_context, key) => {
  const page = tabs.get(key);
  tabs.delete(key);
  await page?.close();
};

export const tabCommands = { openTab, tabCall, closeTab };
