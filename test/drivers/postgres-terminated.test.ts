import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { integer, openDatabase, schema, sql, table } from '../../src/index.js';
import { requireAll, requirements } from '../support/requirements.js';

/**
 * A connection PostgreSQL ends while the app holds it (pg_terminate_backend, a restart, a network
 * cut) fails the query in flight and is dropped from the pool; it never takes the process down
 * with an unhandled 'error' (which vitest reports as a failure of the run). Found by the soak: the
 * sync server died when its snapshot's or push's connection was terminated.
 */

const numbers = table('numbers', { n: integer().primaryKey() });
const numbersSchema = schema({ numbers }, { version: 1 });

describe.skipIf(!requirements.postgres.present && !requireAll)(
  'node-postgres: a terminated connection',
  () => {
    it('fails the held transaction, drops the connection, and the pool goes on', async () => {
      const namespace = `terminated_${process.pid}_${Date.now().toString(36)}`;
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      await admin.query(`CREATE SCHEMA "${namespace}"`);
      try {
        const db = await openDatabase(
          numbersSchema,
          postgres({ connectionString: process.env.DATABASE_URL, schema: namespace }),
        );
        try {
          const held = db.transaction(async (tx) => {
            const [{ pid }] = await tx.execute<{ pid: number }>(sql`SELECT pg_backend_pid() AS pid`);
            await admin.query('SELECT pg_terminate_backend($1)', [pid]);
            // Give the connection time to hear the termination before it is used again.
            await new Promise((resolve) => setTimeout(resolve, 200));
            await tx.insert(numbers).values({ n: 1 });
          });
          await expect(held).rejects.toThrow();
          // The pool hands out a live connection again.
          await db.insert(numbers).values({ n: 2 });
          expect(await db.select().from(numbers)).toEqual([{ n: 2 }]);
        } finally {
          await db.close();
        }
      } finally {
        await admin.query(`DROP SCHEMA "${namespace}" CASCADE`);
        await admin.end();
      }
    });
  },
);
