import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { is } from '../entity.js';
import { UsageError } from '../errors.js';
import { Schema } from '../schema/schema.js';

/** A schema found in a module, and the export it came from. */
export interface LoadedSchema {
  readonly schema: Schema;
  readonly exportName: string;
  readonly file: string;
  /** Every export of the module, for commands that take more from it (`serve` takes `rules`). */
  readonly module: Readonly<Record<string, unknown>>;
}

/**
 * Imports the app's schema module (TypeScript or JavaScript, through tsx) and picks its Schema: the
 * export named `exportName`, or else the only Schema it exports. Schemas are recognised with `is()`,
 * so one made by another copy of syncline (the app's own) is found too.
 *
 * @example
 *   const { schema } = await loadSchemaModule('src/schema.ts');
 */
export async function loadSchemaModule(
  file: string,
  exportName?: string,
  cwd: string = process.cwd(),
): Promise<LoadedSchema> {
  const path = resolve(cwd, file);
  if (!existsSync(path)) throw new UsageError(`the schema module ${file} does not exist (looked at ${path})`);
  let module: Record<string, unknown>;
  try {
    module = await tsImport(pathToFileURL(path).href, { parentURL: import.meta.url });
  } catch (error) {
    throw new UsageError(`could not load the schema module ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }

  const schemas = Object.entries(module).filter(([, value]) => is(value, Schema)) as [string, Schema][];
  if (exportName !== undefined) {
    if (!(exportName in module)) {
      throw new UsageError(
        `${file} has no export named "${exportName}"${schemaList(schemas, ' (its schema exports: ', ')')}`,
      );
    }
    const value = module[exportName];
    if (!is(value, Schema)) {
      throw new UsageError(`the export "${exportName}" of ${file} is not a schema made with schema({...})`);
    }
    return { schema: value, exportName, file: path, module };
  }
  // `export const appSchema = ...; export default appSchema` is one schema, not two.
  const distinct = [...new Set(schemas.map(([, s]) => s))];
  if (distinct.length === 0) {
    throw new UsageError(
      `${file} exports no schema: export the result of schema({...}, { version }) from it, or pass --export <name>`,
    );
  }
  if (distinct.length > 1) {
    throw new UsageError(
      `${file} exports several schemas${schemaList(schemas, ' (', ')')}: choose one with --export <name>`,
    );
  }
  const [name, found] = schemas.find(([n]) => n !== 'default') ?? schemas[0]!;
  return { schema: found, exportName: name, file: path, module };
}

function schemaList(schemas: readonly [string, Schema][], before: string, after: string): string {
  return schemas.length === 0 ? '' : `${before}${schemas.map(([n]) => n).join(', ')}${after}`;
}
