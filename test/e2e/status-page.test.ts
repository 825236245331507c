import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { type Database, openDatabase } from '../../src/index.js';
import { type SyncClient, syncClient } from '../../src/sync/client/index.js';
import { appSchema, lists, todos } from '../support/fixtures.js';
import { requireAll, requirements } from '../support/requirements.js';
import { SocketTap } from '../support/sync-fixture.js';
import { startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';
import { launchChromium } from './todo-page.js';

// The sync server's status page, read in a real Chromium: the admin token asked for, the live
// connections with their user, client, shapes and outbox, the activity chart and the latest
// rejections, and no row data. Its screenshot goes to a temporary file, or to docs/status-page.png
// with SYNCLINE_SCREENSHOTS=1 (how the one in the docs is made).
const ADMIN = 'status-page-admin-token-0123456789abcdef';
const SCREENSHOT = process.env.SYNCLINE_SCREENSHOTS
  ? 'docs/status-page.png'
  : join(tmpdir(), `syncline-status-page-${process.pid}.png`);
const LIST = '0f8fad5b-d9cb-469f-a165-70867728950e';

const opened: { db: Database<typeof appSchema>; sync: SyncClient }[] = [];
afterAll(async () => {
  for (const { db, sync } of opened.splice(0)) {
    await sync.stop();
    await db.close();
  }
});

describe.skipIf(!requirements.chromium.present && !requireAll)('the status page in Chromium', () => {
  it('shows the connections, the activity and the rejections to whoever has the admin token', async () => {
    const t = await startTestServer(appSchema, {
      monitoring: { statusPage: true, adminToken: ADMIN },
      rules: {
        lists: { read: () => true, write: (user, row) => row.ownerId === user.userId },
        todos: { read: () => true, write: () => true },
      },
    });
    const base = `http://127.0.0.1:${t.server.port}`;
    expect((await fetch(`${base}/status.json`)).status).toBe(401);
    expect((await fetch(`${base}/status.json`, { headers: { Authorization: 'Bearer nope' } })).status).toBe(
      401,
    );

    const bobTap = new SocketTap();
    for (const user of ['alice', 'bob']) {
      const db = await openDatabase(appSchema, sqlite());
      const sync = syncClient(db, {
        url: t.url,
        token: await t.token(user),
        shapes: [{ table: lists }, { id: 'open-todos', table: todos }],
        pingIntervalMs: 200,
        ...(user === 'bob' ? { WebSocket: bobTap.WebSocket } : {}),
      });
      opened.push({ db, sync });
      await sync.start();
    }
    const [alice, bob] = opened as [(typeof opened)[0], (typeof opened)[0]];
    await alice.db.insert(lists).values({ id: LIST, name: 'secret groceries', ownerId: 'alice' });
    await alice.sync.flush();
    // Bob's write the rules refuse: it shows among the rejections, without the row's values.
    await bob.db
      .insert(lists)
      .values({ id: '1f8fad5b-d9cb-469f-a165-70867728950e', name: 'not his', ownerId: 'alice' });
    await bob.sync.flush();
    // Bob's pushes are lost on the way from now on: his next write waits in his outbox, and his
    // keep-alive pings say so.
    bobTap.dropOutgoing = (text) => text.startsWith('{"type":"push"');
    await bob.db.insert(todos).values({ listId: LIST, title: 'waiting' });

    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
      await page.goto(`${base}/status`);
      await page.locator('#token').fill(ADMIN);
      await page.getByRole('button', { name: 'Show' }).click();
      const rows = page.locator('#connections tr');
      await waitFor(async () => (await rows.count()) === 2, 10_000, 'two connections on the page');
      const text = await page.locator('body').innerText();
      for (const { sync } of opened) expect(text).toContain(sync.clientId!);
      expect(text).toContain('alice');
      expect(text).toMatch(/lists, open-todos \(todos\)/);
      expect(text).toMatch(/write rule/);
      expect(text).not.toMatch(/secret groceries|not his/);
      await waitFor(
        async () => (await page.locator('#connections').innerText()).includes('1 waiting'),
        10_000,
        "bob's outbox reported",
      );
      expect(text).not.toMatch(/1f8fad5b|0f8fad5b/); // no keys either
      await waitFor(async () => (await page.locator('#chart path').count()) > 0, 10_000, 'the chart');
      await page.screenshot({ path: SCREENSHOT });
    } finally {
      await browser.close();
    }
  }, 60_000);
});
