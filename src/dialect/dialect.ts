import type { SynclineError } from '../errors.js';
import type { CanonicalSql, LiveTable } from '../migrations/live-schema.js';
import type { MigrationDialect } from '../migrations/migration-dialect.js';
import type { SqlRunner } from '../migrations/sql-runner.js';
import type { ColumnType, DialectName, PhysicalType } from '../schema/column-type.js';
import type { DdlCompiler } from './ddl-compiler.js';
import type { QueryCompiler } from './query-compiler.js';

/**
 * What one SQL dialect supplies: its physical types, its query and DDL compilers, and how its
 * errors map onto syncline's. Drivers pick a dialect; nothing outside `src/dialect/` branches on it.
 */
export interface Dialect {
  readonly name: DialectName;
  readonly compiler: QueryCompiler;
  readonly ddl: DdlCompiler;
  /** Schema versions, migration locks and the table changes a dialect makes its own way. */
  readonly migrations: MigrationDialect;
  /** The SQL that opens a transaction. */
  readonly beginTransaction: string;
  /** How a logical type is stored here. */
  physicalType(type: ColumnType): PhysicalType;
  /** Encodes a parameter that has no column type (in a `sql` template): Dates, booleans, bytes. */
  encodeUntyped(value: unknown): unknown;
  /** Maps a driver's error onto a `SynclineError` subclass, keeping it as `cause`. */
  translateError(error: unknown): SynclineError;
  /** Reads the live database's tables (the current schema only), for `verifySchema`. */
  introspect(run: SqlRunner): Promise<LiveTable[]>;
  /** Spells types and defaults one way, so declared and introspected ones compare as text. */
  readonly canonicalSql: CanonicalSql;
}

/** Resolves a logical type through a table of physical types, caching per type object. */
export function physicalTypeResolver(
  dialect: DialectName,
  builtins: Record<Exclude<ColumnType['kind'], 'enum' | 'custom'>, PhysicalType>,
  enumType: (values: readonly string[]) => PhysicalType,
): (type: ColumnType) => PhysicalType {
  const cache = new WeakMap<ColumnType, PhysicalType>();
  return (type) => {
    let physical = cache.get(type);
    if (physical) return physical;
    if (type.kind === 'enum') physical = enumType(type.enumValues ?? []);
    else if (type.kind === 'custom') physical = customPhysicalType(dialect, type);
    else physical = builtins[type.kind];
    cache.set(type, physical);
    return physical;
  };
}

function customPhysicalType(dialect: DialectName, type: ColumnType): PhysicalType {
  const spec = type.custom!;
  const pick = <F>(value: F | { sqlite?: F; postgres?: F } | undefined): F | undefined =>
    typeof value === 'function' ? value : (value as { sqlite?: F; postgres?: F } | undefined)?.[dialect];
  const sqlType = typeof spec.sqlType === 'string' ? spec.sqlType : spec.sqlType[dialect];
  const identity = (value: unknown) => value;
  const fromDriver = pick(spec.fromDriver) ?? identity;
  // A SQLite type with "INT" in its name stores 64-bit integers, which a JS number cuts past
  // 2^53: such columns are read as bigints, and handed to fromDriver as numbers when they fit one
  // exactly (as before), as bigints when they do not.
  if (dialect === 'sqlite' && /INT/i.test(sqlType)) {
    return {
      sqlType,
      toDriver: pick(spec.toDriver) ?? identity,
      fromDriver: (value) => fromDriver(typeof value === 'bigint' ? exactNumber(value) : value),
      needsBigInt: true,
    };
  }
  return { sqlType, toDriver: pick(spec.toDriver) ?? identity, fromDriver };
}

/** `value` as a number when a number holds it exactly, else the bigint itself. */
function exactNumber(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}
