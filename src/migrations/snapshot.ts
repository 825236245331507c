import { postgresDialect } from '../dialect/postgres/postgres-dialect.js';
import { sqliteDialect } from '../dialect/sqlite/sqlite-dialect.js';
import type { Column } from '../schema/column.js';
import type { ReferenceAction } from '../schema/column-builder.js';
import type { ColumnDefault, ColumnTypeKind, DialectName } from '../schema/column-type.js';
import type { Schema } from '../schema/schema.js';
import type { AnyTable } from '../schema/table.js';
import type { SQL } from '../sql/sql.js';
import { encodeSnapshotValue, type SnapshotValue } from './snapshot-value.js';

/** The snapshot format this version of syncline writes and reads. */
export const SNAPSHOT_FORMAT = 1;

/** SQL text as each dialect compiles it (a check, a partial index's WHERE, a SQL default). */
export interface DialectText {
  readonly sqlite: string;
  readonly postgres: string;
}

export type DefaultSnapshot =
  | { readonly kind: 'value'; readonly value: SnapshotValue }
  /** A constant default of a custom type: its encoded value per dialect (custom encoders are not kept). */
  | {
      readonly kind: 'value';
      readonly driverValue: { readonly sqlite: SnapshotValue; readonly postgres: SnapshotValue };
    }
  | ({ readonly kind: 'sql' } & DialectText)
  | { readonly kind: 'random' }
  | { readonly kind: 'now' }
  /** A `$defaultFn()` default: TypeScript code, which a snapshot cannot keep. */
  | { readonly kind: 'fn' };

export interface ColumnSnapshot {
  readonly name: string;
  readonly key: string;
  readonly type: ColumnTypeKind;
  readonly enumValues?: readonly string[];
  readonly customType?: { readonly name: string; readonly sqlType: DialectText };
  readonly notNull: boolean;
  readonly primaryKey: boolean;
  readonly unique: boolean;
  readonly uniqueName?: string;
  readonly default?: DefaultSnapshot;
  readonly references?: {
    readonly table: string;
    readonly column: string;
    readonly onDelete?: ReferenceAction;
    readonly onUpdate?: ReferenceAction;
  };
}

export interface IndexSnapshot {
  readonly name: string;
  readonly unique: boolean;
  readonly columns: readonly string[];
  readonly where?: DialectText;
}

export interface CheckSnapshot extends DialectText {
  readonly name: string;
}

export interface ForeignKeySnapshot {
  readonly name?: string;
  readonly columns: readonly string[];
  readonly references: { readonly table: string; readonly columns: readonly string[] };
  readonly onDelete?: ReferenceAction;
  readonly onUpdate?: ReferenceAction;
}

export interface TableSnapshot {
  /** The table's key in `schema({...})`. */
  readonly key: string;
  readonly name: string;
  readonly local: boolean;
  readonly columns: readonly ColumnSnapshot[];
  readonly primaryKey?: { readonly name?: string; readonly columns: readonly string[] };
  readonly indexes: readonly IndexSnapshot[];
  readonly checks: readonly CheckSnapshot[];
  readonly foreignKeys: readonly ForeignKeySnapshot[];
}

/** A schema version as plain JSON: what `npx syncline schema export` writes to `schemas/v<version>.json`. */
export interface SchemaSnapshot {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly version: number;
  readonly tables: readonly TableSnapshot[];
}

const dialects = { sqlite: sqliteDialect, postgres: postgresDialect } as const;

/**
 * SQL rebuilt from a snapshot, by the texts it was rebuilt from: compiling it again on the other
 * dialect would not give that dialect's text back, so `schemaSnapshot()` reads these instead.
 */
const rebuiltTexts = new WeakMap<SQL<unknown>, DialectText>();

/** Records the texts an expression was rebuilt from (used by `schemaFromSnapshot`). */
export function rememberSnapshotText(expression: SQL<unknown>, texts: DialectText): void {
  rebuiltTexts.set(expression, { sqlite: texts.sqlite, postgres: texts.postgres });
}

function sqlText(expression: SQL<unknown>): DialectText {
  return (
    rebuiltTexts.get(expression) ?? {
      sqlite: dialects.sqlite.compiler.compileInline(expression.node),
      postgres: dialects.postgres.compiler.compileInline(expression.node),
    }
  );
}

/** Drops undefined fields so the JSON has only what is set; key order stays as written. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function defaultSnapshot(column: Column<any, any, any, any>): DefaultSnapshot | undefined {
  const def: ColumnDefault | undefined = column.default;
  if (!def) return undefined;
  switch (def.kind) {
    case 'value': {
      if (column.type.kind !== 'custom' || def.value === null) {
        return { kind: 'value', value: encodeSnapshotValue(def.value) };
      }
      const encoded = (dialect: DialectName) =>
        encodeSnapshotValue(dialects[dialect].physicalType(column.type).toDriver(def.value));
      return { kind: 'value', driverValue: { sqlite: encoded('sqlite'), postgres: encoded('postgres') } };
    }
    case 'sql':
      return { kind: 'sql', ...sqlText(def.sql) };
    default:
      return { kind: def.kind };
  }
}

function columnSnapshot(column: Column<any, any, any, any>): ColumnSnapshot {
  const { type } = column;
  const custom = type.kind === 'custom' ? type.custom! : undefined;
  const reference = column.references;
  const target = reference?.target();
  return compact({
    name: column.name,
    key: column.key,
    type: type.kind,
    enumValues: type.kind === 'enum' ? [...(type.enumValues ?? [])] : undefined,
    customType: custom && {
      name: custom.name,
      sqlType:
        typeof custom.sqlType === 'string'
          ? { sqlite: custom.sqlType, postgres: custom.sqlType }
          : { sqlite: custom.sqlType.sqlite, postgres: custom.sqlType.postgres },
    },
    notNull: column.notNull,
    primaryKey: column.primaryKey,
    unique: column.unique,
    uniqueName: column.uniqueName,
    default: defaultSnapshot(column),
    references:
      reference && target
        ? compact({
            table: target.table.$name,
            column: target.name,
            onDelete: reference.onDelete,
            onUpdate: reference.onUpdate,
          })
        : undefined,
  });
}

function tableSnapshot(key: string, t: AnyTable): TableSnapshot {
  return compact({
    key,
    name: t.$name,
    local: t.$local,
    columns: t.$columnList.map(columnSnapshot),
    primaryKey:
      t.$primaryKey &&
      compact({ name: t.$primaryKey.name, columns: t.$primaryKey.columns.map((c) => c.name) }),
    indexes: t.$indexes.map((i) =>
      compact({
        name: i.name,
        unique: i.unique,
        columns: i.columns.map((c) => c.name),
        where: i.where && sqlText(i.where),
      }),
    ),
    checks: t.$checks.map((c) => ({ name: c.name, ...sqlText(c.expression) })),
    foreignKeys: t.$foreignKeys.map((fk) => {
      const targets = fk.target();
      return compact({
        name: fk.name,
        columns: fk.columns.map((c) => c.name),
        references: { table: targets[0]!.table.$name, columns: targets.map((c) => c.name) },
        onDelete: fk.onDelete,
        onUpdate: fk.onUpdate,
      });
    }),
  });
}

/**
 * The schema of the current version as plain JSON: tables, columns with their logical types,
 * constraints, indexes, and every SQL expression (checks, partial index conditions, SQL defaults)
 * as each dialect compiles it. The output is deterministic, so snapshots diff cleanly in git.
 * Custom types keep their name and SQL types; their encoders are code and are not kept.
 *
 * @example
 *   writeFileSync(`schemas/v${appSchema.version}.json`, formatSchemaSnapshot(schemaSnapshot(appSchema)));
 */
export function schemaSnapshot(s: Schema): SchemaSnapshot {
  return {
    format: SNAPSHOT_FORMAT,
    version: s.version,
    tables: Object.entries(s.tables).map(([key, t]) => tableSnapshot(key, t)),
  };
}

/** A snapshot as the text of its file: two-space JSON and a final newline. */
export function formatSchemaSnapshot(snapshot: SchemaSnapshot): string {
  return `${JSON.stringify(snapshot, null, 2)}\n`;
}
