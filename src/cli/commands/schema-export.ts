import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { formatSchemaSnapshot, schemaSnapshot } from '../../migrations/snapshot.js';
import { loadSchemaModule } from '../load-schema.js';

export interface SchemaExportOptions {
  /** The module that exports the schema (TypeScript or JavaScript). */
  schema: string;
  /** The folder snapshots live in. */
  out: string;
  /** The export to take when the module exports several schemas. */
  export?: string;
  /** Overwrite a snapshot of the same version that differs. */
  force?: boolean;
  cwd?: string;
}

export interface SchemaExportResult {
  readonly file: string;
  readonly version: number;
  /** `unchanged` when the file already held exactly this snapshot. */
  readonly status: 'written' | 'unchanged' | 'overwritten';
}

/**
 * Writes the snapshot of the schema's current version to `<out>/v<version>.json`. An existing
 * snapshot of that version with other content is kept unless `force` is set: a released version
 * must not change silently, since `verifyMigrations` builds old databases from these files.
 *
 * @example
 *   await exportSchema({ schema: 'src/schema.ts', out: 'schemas' }); // schemas/v3.json
 */
export async function exportSchema(options: SchemaExportOptions): Promise<SchemaExportResult> {
  const cwd = options.cwd ?? process.cwd();
  const { schema } = await loadSchemaModule(options.schema, options.export, cwd);
  const dir = resolve(cwd, options.out);
  const file = join(dir, `v${schema.version}.json`);
  const snapshot = schemaSnapshot(schema);
  let status: SchemaExportResult['status'] = 'written';
  if (existsSync(file)) {
    // Compared as JSON, not as text: a formatter may have rewrapped the file since it was written.
    if (isDeepStrictEqual(readJson(file), JSON.parse(JSON.stringify(snapshot)))) {
      return { file, version: schema.version, status: 'unchanged' };
    }
    if (!options.force) {
      throw new UsageError(
        `${relative(cwd, file)} already holds a different snapshot of version ${schema.version}, and a released version must not change. ` +
          `Bump the version (schema({...}, { version: ${schema.version + 1} })) and add a migration step to it, ` +
          `or pass --force if version ${schema.version} was never released.`,
      );
    }
    status = 'overwritten';
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, formatSchemaSnapshot(snapshot));
  return { file, version: schema.version, status };
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined; // not JSON: it differs, and --force may replace it
  }
}

/** `syncline schema export --schema <file> --out <dir> [--export <name>] [--force]` */
export function schemaExportCommand(): Command {
  return new Command('export')
    .description('write the schema of the current version as JSON to <out>/v<version>.json')
    .requiredOption('-s, --schema <file>', 'the module that exports the schema (.ts or .js)')
    .requiredOption('-o, --out <dir>', 'the folder for snapshots, e.g. schemas')
    .option('-e, --export <name>', 'the export to use when the module exports several schemas')
    .option(
      '-f, --force',
      'overwrite a different snapshot of the same version (only if it was never released)',
    )
    .action(async (options: SchemaExportOptions) => {
      const result = await exportSchema(options);
      const shown = relative(process.cwd(), result.file) || result.file;
      const message = {
        written: `wrote ${shown} (schema version ${result.version})`,
        overwritten: `overwrote ${shown} (schema version ${result.version})`,
        unchanged: `${shown} is up to date (schema version ${result.version})`,
      }[result.status];
      console.log(message);
    });
}
