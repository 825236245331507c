import { Command } from 'commander';
import { openDatabase } from '../../database/database.js';
import type { MigrationProgress, OpenDetails } from '../../migrations/run-migrations.js';
import { databaseDriver, databaseOpenError, shownDatabase } from '../database-option.js';
import { loadSchemaModule } from '../load-schema.js';

/**
 * What `syncline migrate` takes: the schema module (and the export, when it has several schemas),
 * the database (a postgres:// URL or a PGlite folder) and where relative paths start.
 *
 * @example
 *   const options: MigrateOptions = { schema: 'src/schema.ts', database: 'postgres://localhost/app' };
 */
export interface MigrateOptions {
  schema: string;
  export?: string;
  database: string;
  cwd?: string;
}

/**
 * Brings a database to the schema's version, as `openDatabase` does when an app starts, without
 * serving: a new database gets every table, an older one runs the schema's migration steps in
 * order, each in its own transaction under the migration lock (drizzle-kit's `migrate`, drift's
 * schema steps). `onProgress` hears each step. Returns the versions it went from and to.
 *
 * @example
 *   const { from, to } = await migrate({ schema: 'src/schema.ts', database: './data' });
 */
export async function migrate(
  options: MigrateOptions,
  onProgress?: (progress: MigrationProgress) => void,
): Promise<OpenDetails> {
  const cwd = options.cwd ?? process.cwd();
  const { schema } = await loadSchemaModule(options.schema, options.export, cwd);
  let details: OpenDetails | undefined;
  try {
    const db = await openDatabase(schema, await databaseDriver(options.database, cwd), {
      migrations: {
        onProgress,
        beforeOpen: async (_db, opened) => {
          details = opened;
        },
      },
    });
    await db.close();
  } catch (error) {
    throw databaseOpenError(error, options.database);
  }
  return details ?? { from: schema.version, to: schema.version, created: false };
}

/** `syncline migrate --schema <file> --database <url|dir> [--export <name>]` */
export function migrateCommand(): Command {
  return new Command('migrate')
    .description(
      "bring a database to the schema's version (create it, or run its migration steps), without serving",
    )
    .requiredOption('-s, --schema <file>', 'the module that exports the schema')
    .requiredOption(
      '-d, --database <url|dir>',
      'a postgres:// URL, or a folder for an embedded PGlite database (created if missing)',
    )
    .option('-e, --export <name>', 'the export to use when the module exports several schemas')
    .action(async (options: MigrateOptions) => {
      const where = shownDatabase(options.database);
      const details = await migrate(options, (p) => {
        // A new database is made in one step: the line after says so.
        if (p.from > 0)
          console.log(`syncline: migrating ${where}: step ${p.step} of ${p.of}, to version ${p.version}`);
      });
      if (details.created) console.log(`syncline: created ${where} at schema version ${details.to}`);
      else if (details.from === details.to)
        console.log(`syncline: ${where} is at schema version ${details.to} already`);
      else console.log(`syncline: migrated ${where} from schema version ${details.from} to ${details.to}`);
    });
}
