import type { Database } from '../database/database.js';
import { runTransaction } from '../database/transaction.js';
import { MigrationError } from '../errors.js';
import { Migrator } from './migrator.js';
import { sessionRunner, transactionRunner } from './sql-runner.js';

/** Where a migration run is: step n of m, and the version that step leads to. */
export interface MigrationProgress {
  step: number;
  of: number;
  from: number;
  to: number;
  version: number;
}

/** What `beforeOpen` learns about the open. */
export interface OpenDetails {
  /** The version the database had (0 for a new database). */
  from: number;
  to: number;
  /** True when the database was new and `onCreate` ran. */
  created: boolean;
}

/** How `openDatabase` treats the schema version (drift's MigrationStrategy). */
export interface MigrationOptions {
  /** False leaves the database alone: for apps that manage PostgreSQL with another tool. */
  enabled?: boolean;
  /** Sets up a new database; by default creates every table and index. */
  onCreate?: (m: Migrator) => Promise<void>;
  /** Runs after creating or migrating, before `openDatabase` resolves. */
  beforeOpen?: (db: Database, details: OpenDetails) => Promise<void>;
  /** Hears progress: called before each step. */
  onProgress?: (progress: MigrationProgress) => void;
}

/**
 * Brings the database to the schema's version: creates a new one, or runs the steps from its
 * stored version up, each in its own transaction together with its version bump. Runs on one held
 * connection under the dialect's migration lock.
 */
export async function runMigrations(db: Database, options: MigrationOptions = {}): Promise<OpenDetails> {
  const { schema, dialect, driver } = db;
  const to = schema.version;
  const session = await driver.acquire();
  const onSession = sessionRunner(session, dialect);
  let broken = false;
  let details: OpenDetails;
  const unlock = await dialect.migrations.lock(onSession).catch((error) => {
    session.release();
    throw error;
  });
  try {
    const from = await dialect.migrations.readVersion(onSession);
    if (from > to) {
      throw new MigrationError(
        `the database is at schema version ${from}, newer than this app's schema version ${to}: ` +
          'update the app, or open the database with a schema of that version',
      );
    }
    // Runs one step in its own transaction; `version` is where it leads.
    const step = async (version: number, body: (m: Migrator) => Promise<void>) => {
      const restore = await dialect.migrations.beforeStep(onSession);
      try {
        await runTransaction(
          session,
          dialect,
          async (tx) => {
            const run = transactionRunner(tx);
            // Another process may have run this step while this one waited for the lock (SQLite).
            if ((await dialect.migrations.readVersion(run)) >= version) return;
            await body(new Migrator(tx, dialect, schema));
            await dialect.migrations.checkStep(run);
            await dialect.migrations.writeVersion(run, version);
          },
          () => {
            broken = true;
          },
        );
      } finally {
        await restore();
      }
    };

    if (from === 0) {
      options.onProgress?.({ step: 1, of: 1, from, to, version: to });
      await step(to, (m) => (options.onCreate ? options.onCreate(m) : m.createAll())).catch((error) => {
        throw new MigrationError(`creating the schema (version ${to}) failed: ${(error as Error).message}`, {
          cause: error,
        });
      });
      details = { from, to, created: true };
    } else {
      const missing: number[] = [];
      for (let v = from + 1; v <= to; v++) if (typeof schema.migrations[v] !== 'function') missing.push(v);
      if (missing.length > 0) {
        throw new MigrationError(
          `the database is at schema version ${from} and the app at ${to}, but there is no migration step to version ${missing.join(', ')}: add it to schema({...}, { migrations: { ${missing[0]}: async (m) => ... } })`,
        );
      }
      for (let v = from + 1; v <= to; v++) {
        options.onProgress?.({ step: v - from, of: to - from, from, to, version: v });
        await step(v, async (m) => {
          await schema.migrations[v]!(m);
        }).catch((error) => {
          throw new MigrationError(
            `migration step ${v} (from version ${v - 1} to ${v}) failed and was rolled back; the database stays at version ${v - 1}: ${(error as Error).message}`,
            { cause: error },
          );
        });
      }
      details = { from, to, created: false };
    }
  } finally {
    try {
      await unlock();
    } catch {
      broken = true;
    }
    session.release(broken);
  }
  await options.beforeOpen?.(db, details);
  return details;
}
