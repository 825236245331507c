import pg from 'pg';
import { expect, it } from 'vitest';
import { type Database, integer, schema, sql, table, text } from '../../src/index.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { ChangeLogReader } from '../../src/sync/server/change-log-reader.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';
import { waitFor } from '../support/wait.js';

/**
 * Installing capture on a database that apps are writing to (a sync server's first start, or a
 * start after a migration): the install locks each synced table in turn, so a writer holding a
 * later table that then writes an earlier one would deadlock with it. The install gives way and
 * tries again; the app's transaction is never the one aborted.
 */

const first = table('first_table', { id: integer().primaryKey(), body: text().notNull() });
const second = table('second_table', { id: integer().primaryKey(), body: text().notNull() });
const installSchema = schema({ first, second });
type Db = Database<typeof installSchema>;

async function connect(db: Db): Promise<pg.Client> {
  const [{ schema: current }] = await db.execute<{ schema: string }>(sql`select current_schema() as schema`);
  const client = new pg.Client({
    connectionString: process.env.DATABASE_URL,
    options: `-c search_path="${current}"`,
  });
  await client.connect();
  return client;
}

/** Whether some session waits for a lock on `relation` in the database's schema. */
async function someoneWaitsFor(client: pg.Client, relation: string): Promise<boolean> {
  const { rows } = await client.query(
    'SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)',
    [relation],
  );
  return rows[0].n > 0;
}

dialectSuite(
  'installing capture while apps write',
  (env) => {
    it('gives way to a writer that would deadlock with it, then installs; the writer commits', async () => {
      const db = await env.open(installSchema);
      const writer = await connect(db);
      const watcher = await connect(db);
      try {
        await writer.query('BEGIN');
        await writer.query(`INSERT INTO second_table (id, body) VALUES (1, 'held')`);
        // The install takes first_table, then waits for second_table, which the writer holds ...
        const install = installCapture(db, installSchema.tableList);
        const outcome = install.then(
          () => 'installed',
          (error: Error) => `failed: ${error.message}`,
        );
        await waitFor(() => someoneWaitsFor(watcher, 'second_table'), 10_000, 'the install waiting');
        // ... and the writer now wants first_table: without giving way, one of the two is a deadlock's victim.
        await writer.query(`INSERT INTO first_table (id, body) VALUES (1, 'also held')`);
        await writer.query('COMMIT');
        expect(await outcome).toBe('installed');

        // Capture is in place: the next write is logged.
        const reader = new ChangeLogReader(db);
        await reader.readNew();
        await writer.query(`UPDATE first_table SET body = 'captured' WHERE id = 1`);
        const { changes } = await reader.readNew();
        expect(changes.map((c) => [c.table, c.op, c.row.body])).toEqual([
          ['first_table', 'update', 'captured'],
        ]);
      } finally {
        await writer.end();
        await watcher.end();
      }
    });

    it('gives up after its attempts with an error that says what holds the tables', async () => {
      const db = await env.open(installSchema);
      const holder = await connect(db);
      try {
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE second_table IN ACCESS EXCLUSIVE MODE');
        const error = await installCapture(db, installSchema.tableList, { attempts: 4 }).then(
          () => undefined,
          (e: Error) => e,
        );
        expect(error?.message).toMatch(/stayed locked by other transactions through 4 attempts/);
        await holder.query('ROLLBACK');
        // Nothing half-installed blocks the next try.
        await installCapture(db, installSchema.tableList);
        await expect(installCapture(db, installSchema.tableList, { attempts: 0 })).rejects.toThrow(
          'installCapture(): attempts must be a whole number of at least 1, got 0',
        );
        for (const attempts of [1.5, -1, Number.NaN]) {
          await expect(installCapture(db, installSchema.tableList, { attempts })).rejects.toThrow(
            `installCapture(): attempts must be a whole number of at least 1, got ${attempts}`,
          );
        }
      } finally {
        await holder.end();
      }
    });
  },
  testDrivers.filter((d) => d.name === 'postgres'),
);
