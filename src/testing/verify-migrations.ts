import { relative } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { type Database, openDatabase } from '../database/database.js';
import type { Driver } from '../database/driver.js';
import { MigrationError, SchemaMismatchError, UsageError } from '../errors.js';
import type { SchemaDifference } from '../migrations/schema-difference.js';
import { schemaFromSnapshot } from '../migrations/schema-from-snapshot.js';
import { type SchemaSnapshot, schemaSnapshot } from '../migrations/snapshot.js';
import { verifySchema } from '../migrations/verify-schema.js';
import type { Schema } from '../schema/schema.js';
import { count } from '../sql/functions.js';
import { readSnapshots, type SnapshotFile } from './read-snapshots.js';
import { writeSampleRows } from './sample-rows.js';

export interface VerifyMigrationsOptions {
  /** The app's schema at its current version, with its migration steps. */
  schema: Schema;
  /** The folder `npx syncline schema export` writes to: `v1.json`, `v2.json`, ... */
  snapshotsDir: string;
  /**
   * A driver on a fresh, empty database; called once per snapshot. For example `() => sqlite()`,
   * `({ version }) => pglite({ instance, schema: \`v${version}\` })`, or a PostgreSQL schema of its own.
   */
  driver: (context: { version: number }) => Driver | Promise<Driver>;
  /**
   * Writes the app's own rows into the database of an old version, instead of generated ones. The
   * database's tables are those of the snapshot: custom columns take values as the driver does, and
   * columns with a `$defaultFn()` need a value.
   */
  fill?: (db: Database, version: number) => Promise<void>;
  /** How many generated rows each table gets when there is no `fill` (3 by default). */
  rowsPerTable?: number;
}

/** What happened to the database of one snapshot. */
export interface MigrationCheck {
  /** The snapshot's version, the database's version before migrating. */
  readonly version: number;
  readonly file: string;
  /** Rows per table before migrating. */
  readonly rows: Readonly<Record<string, number>>;
  /** Rows per table of the current schema after migrating. */
  readonly rowsAfter: Readonly<Record<string, number>>;
  /** Where the migrated database differs from the schema (empty when it matches). */
  readonly differences: readonly SchemaDifference[];
  /** Why creating, filling or migrating the database failed, when it did. */
  readonly error: Error | undefined;
  /** What failed: creating the old database, filling it, or migrating it. */
  readonly failedAt: 'create' | 'fill' | 'migrate' | undefined;
}

/**
 * Tests an app's migrations against its history: for every snapshot older than the schema's
 * version, creates a database of that version, fills it (with the app's `fill`, or a few generated
 * rows per table), closes it, opens it with the current schema (which runs the migration steps) and
 * compares the result with the schema using `verifySchema`. A forgotten step, a step that fails,
 * or a step that leaves the database different from the schema throws a `MigrationError` or a
 * `SchemaMismatchError` naming the snapshot and what went wrong. A snapshot of the current version
 * must match the schema: a released version must not change.
 *
 * @example
 *   import { verifyMigrations } from 'syncline/testing';
 *   it('migrates every released version', async () => {
 *     await verifyMigrations({ schema: appSchema, snapshotsDir: 'schemas', driver: () => sqlite() });
 *   });
 */
export async function verifyMigrations(options: VerifyMigrationsOptions): Promise<MigrationCheck[]> {
  const { schema } = options;
  const files = readSnapshots(options.snapshotsDir);
  const newer = files.filter((f) => f.version > schema.version);
  if (newer.length > 0) {
    throw new UsageError(
      `${newer.map((f) => f.file).join(', ')} ${newer.length === 1 ? 'is' : 'are'} newer than the schema's version ${schema.version}`,
    );
  }
  const current = files.find((f) => f.version === schema.version);
  if (current) checkCurrentSnapshot(schema, current);

  const checks: MigrationCheck[] = [];
  for (const file of files)
    if (file.version < schema.version) checks.push(await checkSnapshot(options, file));
  const failed = checks.filter((c) => c.error || c.differences.length > 0);
  if (failed.length === 0) return checks;

  const lines = failed.map((c) => {
    const from = `from version ${c.version} (${relative(process.cwd(), c.file) || c.file})`;
    if (c.error) return `- ${from}: ${c.error.message}`;
    const list = c.differences.map((d) => `    - ${d.message}`).join('\n');
    return `- ${from}: after migrating to version ${schema.version} the database differs from the schema:\n${list}`;
  });
  const firstError = failed.find((c) => c.error)?.error;
  let advice = '';
  if (failed.some((c) => c.differences.length > 0)) {
    advice = '\nAdd the missing changes to the migration steps in schema({...}, { migrations: { ... } }).';
  } else if (failed.some((c) => c.failedAt === 'migrate')) {
    advice = "\nFix the failing migration step (its error is kept as this error's cause).";
  }
  const message =
    `verifyMigrations: ${failed.length} of ${checks.length} old schema version${checks.length === 1 ? '' : 's'} ` +
    `did not migrate cleanly to version ${schema.version}:\n${lines.join('\n')}${advice}`;
  if (firstError) throw new MigrationError(message, { cause: firstError });
  throw new SchemaMismatchError(message, { differences: failed.flatMap((c) => c.differences) });
}

/** The snapshot of the current version must still describe the schema. */
function checkCurrentSnapshot(schema: Schema, file: SnapshotFile): void {
  const now: SchemaSnapshot = JSON.parse(JSON.stringify(schemaSnapshot(schema)));
  if (isDeepStrictEqual(now, file.snapshot)) return;
  const byName = (s: SchemaSnapshot) => new Map(s.tables.map((t) => [t.name, t]));
  const [before, after] = [byName(file.snapshot), byName(now)];
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter(
    (name) => !isDeepStrictEqual(before.get(name), after.get(name)),
  );
  throw new SchemaMismatchError(
    `the schema of version ${schema.version} differs from its snapshot ${file.file}` +
      `${changed.length > 0 ? ` (tables: ${changed.join(', ')})` : ''}: a released version must not change. ` +
      `Bump the version to ${schema.version + 1} and add a migration step, or, if version ${schema.version} was never released, ` +
      'export it again with npx syncline schema export --force.',
  );
}

/** The driver seen by both opens: opened once, and closed only by `checkSnapshot` itself. */
function keptOpen(driver: Driver): Driver {
  let opened: Promise<void> | undefined;
  return {
    dialect: driver.dialect,
    name: driver.name,
    open: () => (opened ??= driver.open()),
    query: (query) => driver.query(query),
    acquire: () => driver.acquire(),
    close: async () => {},
  };
}

async function countRows(db: Database, schema: Schema): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of schema.tableList) {
    const [row] = await db.select({ n: count() }).from(table);
    counts[table.$name] = row?.n ?? 0;
  }
  return counts;
}

async function checkSnapshot(options: VerifyMigrationsOptions, file: SnapshotFile): Promise<MigrationCheck> {
  const { version } = file;
  const driver = await options.driver({ version });
  const shared = keptOpen(driver);
  let rows: Record<string, number> = {};
  let stage: 'create' | 'fill' | 'migrate' = 'create';
  try {
    const old = schemaFromSnapshot(file.snapshot, { dialect: driver.dialect.name });
    let created = false;
    const oldDb = await openDatabase(old, shared, {
      migrations: { beforeOpen: async (_db, details) => void (created = details.created) },
    });
    if (!created) {
      throw new UsageError(
        'the database was not empty: driver() must give a fresh, empty database on every call',
      );
    }
    stage = 'fill';
    if (options.fill) await options.fill(oldDb, version);
    else await writeSampleRows(oldDb, old, options.rowsPerTable ?? 3);
    rows = await countRows(oldDb, old);
    await oldDb.close();

    stage = 'migrate';
    const db = await openDatabase(options.schema, shared);
    const differences = await verifySchema(db);
    const rowsAfter = await countRows(db, options.schema);
    return { version, file: file.file, rows, rowsAfter, differences, error: undefined, failedAt: undefined };
  } catch (error) {
    const reason = (error as Error).message;
    const message = {
      create: `creating a database of version ${version} from the snapshot failed (driver() must give a fresh, empty database on every call): ${reason}`,
      fill: `filling the database of version ${version} failed: ${reason}`,
      migrate: `migrating from version ${version} to ${options.schema.version} failed: ${reason}`,
    }[stage];
    const wrapped = new MigrationError(message, { cause: error });
    return {
      version,
      file: file.file,
      rows,
      rowsAfter: {},
      differences: [],
      error: wrapped,
      failedAt: stage,
    };
  } finally {
    await driver.close();
  }
}
