import { entityKind, is } from '../entity.js';
import { UsageError } from '../errors.js';
import type { Migrator } from '../migrations/migrator.js';
import { type AnyTable, TableBase } from './table.js';

export interface SchemaOptions {
  /** The schema's version, stored in the database; migrations move a database between versions. */
  version?: number;
  /** Migration steps by the version they lead to (see the migrations issue). */
  migrations?: Record<number, (m: Migrator) => Promise<void> | void>;
}

/**
 * The set of tables an app works with, and its version. The same schema object is imported by the
 * client and the server.
 *
 * @example
 *   export const appSchema = schema({ lists, todos }, { version: 1 });
 */
export class Schema<TTables extends Record<string, AnyTable> = Record<string, AnyTable>> {
  static readonly [entityKind]: string = 'Schema';
  readonly tables: TTables;
  readonly version: number;
  readonly migrations: Record<number, (m: Migrator) => Promise<void> | void>;

  constructor(tables: TTables, options: SchemaOptions = {}) {
    const names = new Set<string>();
    for (const [key, t] of Object.entries(tables)) {
      if (!is(t, TableBase)) throw new UsageError(`schema(): "${key}" is not a table made with table()`);
      if (names.has(t.$name)) throw new UsageError(`schema(): two tables are named "${t.$name}"`);
      names.add(t.$name);
    }
    const version = options.version ?? 1;
    if (!Number.isInteger(version) || version < 1) {
      throw new UsageError(`schema(): version must be a whole number of at least 1, got ${version}`);
    }
    this.tables = tables;
    this.version = version;
    this.migrations = options.migrations ?? {};
  }

  /** The tables in declaration order. */
  get tableList(): AnyTable[] {
    return Object.values(this.tables);
  }

  /** A table by its SQL name. */
  tableByName(name: string): AnyTable | undefined {
    return this.tableList.find((t) => t.$name === name);
  }
}

/** Collects tables into a schema. @example schema({ lists, todos }, { version: 1 }) */
export function schema<TTables extends Record<string, AnyTable>>(
  tables: TTables,
  options?: SchemaOptions,
): Schema<TTables> {
  return new Schema(tables, options);
}
