import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { startTodoServer } from './server.js';

/**
 * `npx tsx examples/todo/screenshot.ts`: starts the todo app on a fresh PGlite database (a
 * temporary folder), fills a page with a few lists and todos in headless Chromium (CHROMIUM_PATH,
 * default /usr/bin/chromium) and saves docs/todo-app.png at 1200x800.
 */
const output = fileURLToPath(new URL('../../docs/todo-app.png', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'syncline-todo-shot-'));
const app = await startTodoServer({ port: 0, database: dataDir });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});

async function enter(page: Page, input: string, text: string): Promise<void> {
  await page.fill(input, text);
  await page.press(input, 'Enter');
}

try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  await page.goto(`${app.url}?user=alice`);
  await page.waitForFunction(() => document.getElementById('sync-status')?.textContent === 'online');
  const board: [string, [string, boolean][]][] = [
    [
      'Weekend',
      [
        ['Book the campsite', true],
        ['Pack the tent', false],
      ],
    ],
    ['Work', [['Review the sync PR', false]]],
    [
      'Groceries',
      [
        ['Oat milk', true],
        ['Sourdough bread', false],
        ['Tomatoes', false],
        ['Coffee beans', true],
        ['Basil', false],
      ],
    ],
  ];
  for (const [list, items] of board) {
    await enter(page, '#new-list', list);
    await page.waitForFunction((name) => document.getElementById('list-title')?.textContent === name, list);
    for (const [title, done] of items) {
      await enter(page, '#new-todo', title);
      const item = page.locator('#todos li').filter({ hasText: title });
      if (done) await item.locator('.todo-done').click();
      await page.waitForFunction(
        ([t, d]) =>
          Array.from(document.querySelectorAll('#todos li')).some(
            (li) => li.textContent?.includes(t as string) && li.classList.contains('done') === d,
          ),
        [title, done] as const,
      );
    }
  }
  await page.evaluate(() => (window as any).todoApp.sync.flush());
  await page.screenshot({ path: output });
  console.log(`saved ${output}`);
} finally {
  await browser.close();
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
}
