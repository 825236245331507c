import type { Database } from '../database/database.js';
import { SchemaMismatchError } from '../errors.js';
import { compareSchema } from './compare-schema.js';
import type { LiveTable } from './live-schema.js';
import type { SchemaDifference } from './schema-difference.js';
import { sessionRunner } from './sql-runner.js';

/**
 * Compares the live database with the schema it was opened with and lists every difference:
 * missing or extra tables and columns, column types, nullability, defaults, primary keys,
 * indexes, unique constraints and foreign keys. An empty list means the database matches.
 * Only the current schema is read on PostgreSQL; syncline's own tables are left out.
 *
 * @example
 *   const differences = await verifySchema(db);
 *   for (const d of differences) console.warn(d.message); // "todos.done: type is text, ..."
 */
export async function verifySchema(db: Database<any>): Promise<SchemaDifference[]> {
  // One held connection, so every catalog read sees the same session (search path included).
  const session = await db.driver.acquire();
  let live: LiveTable[];
  try {
    live = await db.dialect.introspect(sessionRunner(session, db.dialect));
  } finally {
    session.release();
  }
  return compareSchema(db.schema, live, db.dialect);
}

/**
 * Throws a `SchemaMismatchError` listing every difference `verifySchema` finds, so an app can
 * refuse to start on a database that was migrated by hand or by another version of the app.
 *
 * @example
 *   const db = await openDatabase(appSchema, postgres(url));
 *   await assertSchema(db); // throws: "the database does not match the schema: ..."
 */
export async function assertSchema(db: Database<any>): Promise<void> {
  const differences = await verifySchema(db);
  if (differences.length === 0) return;
  const lines = differences.map((d) => `  - ${d.message}`).join('\n');
  throw new SchemaMismatchError(
    `the database does not match the schema (${differences.length} difference${differences.length === 1 ? '' : 's'}):\n${lines}\n` +
      'Add a migration step that brings the database to the schema, or change the schema to match the database.',
    { differences },
  );
}
