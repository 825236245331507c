import { eq, sql } from '../../src/index.js';
import type { E2eClient, e2eSchema } from '../support/sync-fixture.js';
import { items } from '../support/sync-fixture.js';
import type { TestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * Writes `count` rows of about `bytes` bytes each into `items`, straight to PostgreSQL (as a
 * backend would), each row's text distinct so nothing compresses it away.
 *
 * @example
 *   await writeBigRows(t, 24, 300_000); // 7 MB
 */
export async function writeBigRows(
  t: TestServer<typeof e2eSchema>,
  count: number,
  bytes: number,
): Promise<void> {
  const repeats = Math.ceil(bytes / 32);
  await t.server.db.execute(
    sql`INSERT INTO items (id, title, note, qty, done, tags)
        SELECT gen_random_uuid(), 'big ' || i, repeat(md5(i::text), ${repeats}::int), i, false, '[]'::jsonb
          FROM generate_series(1, ${count}::int) AS i`,
  );
}

/**
 * Waits (at most a second, the bar a legitimate client's write must meet) until `client` holds
 * the item `id` with `title`.
 *
 * @example
 *   await waitForItem(clients[1], keys[0], 'legit');
 */
export async function waitForItem(client: E2eClient, id: string, title: string): Promise<void> {
  await waitFor(
    async () => (await client.db.select().from(items).where(eq(items.id, id)))[0]?.title === title,
    1000,
    `"${title}" to reach client ${client.name}`,
  );
}
