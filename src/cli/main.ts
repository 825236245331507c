#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { migrateCommand } from './commands/migrate.js';
import { schemaExportCommand } from './commands/schema-export.js';
import { serveCommand } from './commands/serve.js';

/**
 * The `syncline` command. Each subcommand lives in its own file under `commands/`; this file only
 * assembles them.
 *
 * @example
 *   npx syncline schema export --schema src/schema.ts --out schemas
 *   npx syncline serve --schema src/schema.ts --database postgres://localhost/app --port 4000
 *   npx syncline migrate --schema src/schema.ts --database postgres://localhost/app
 */
export function createProgram(): Command {
  // Two levels up from src/cli/main.ts and from dist/cli/main.js alike.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const program = new Command('syncline')
    .description('syncline: one schema for SQLite and PostgreSQL, kept in sync')
    .version(pkg.version)
    .showHelpAfterError();
  program
    .command('schema')
    .description('schema snapshots for migration tests')
    .showHelpAfterError()
    .addCommand(schemaExportCommand());
  program.addCommand(serveCommand());
  program.addCommand(migrateCommand());
  return program;
}

try {
  await createProgram().parseAsync(process.argv);
} catch (error) {
  // Commander has already printed its own errors (unknown command, missing option).
  if (!(error instanceof CommanderError)) console.error(`syncline: ${(error as Error).message}`);
  process.exitCode = error instanceof CommanderError ? error.exitCode : 1;
}
