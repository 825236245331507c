import { UsageError } from '../errors.js';
import { type ColumnBuilder, columnBuilder } from './column-builder.js';
import type { CustomTypeSpec } from './column-type.js';

/** A UUID: `UUID` on PostgreSQL, lower-case canonical `TEXT` on SQLite. @example id: uuid().primaryKey().defaultRandom() */
export function uuid(name?: string): ColumnBuilder<string, false, false, 'uuid'> {
  return columnBuilder({ kind: 'uuid' }, name);
}

/** Text. @example title: text().notNull() */
export function text(name?: string): ColumnBuilder<string, false, false, 'text'> {
  return columnBuilder({ kind: 'text' }, name);
}

/** A 32-bit integer as a JS number. @example position: integer().notNull().default(0) */
export function integer(name?: string): ColumnBuilder<number, false, false, 'integer'> {
  return columnBuilder({ kind: 'integer' }, name);
}

/** A 64-bit integer as a JS bigint, exact beyond 2^53. @example bytes: bigint().notNull() */
export function bigint(name?: string): ColumnBuilder<bigint, false, false, 'bigint'> {
  return columnBuilder({ kind: 'bigint' }, name);
}

/** A double precision float. @example score: real() */
export function real(name?: string): ColumnBuilder<number, false, false, 'real'> {
  return columnBuilder({ kind: 'real' }, name);
}

/** A boolean: `BOOLEAN` on PostgreSQL, 0/1 on SQLite. @example done: boolean().notNull().default(false) */
export function boolean(name?: string): ColumnBuilder<boolean, false, false, 'boolean'> {
  return columnBuilder({ kind: 'boolean' }, name);
}

/** A point in time as a Date, to the millisecond: `TIMESTAMPTZ`, or ms since epoch on SQLite. */
export function timestamp(name?: string): ColumnBuilder<Date, false, false, 'timestamp'> {
  return columnBuilder({ kind: 'timestamp' }, name);
}

/** A JSON value: `JSONB` on PostgreSQL, `TEXT` on SQLite. @example tags: json<string[]>().notNull().default([]) */
export function json<T = unknown>(name?: string): ColumnBuilder<T, false, false, 'json'> {
  return columnBuilder({ kind: 'json' }, name);
}

/** Bytes as a Uint8Array: `BYTEA` / `BLOB`. @example avatar: blob() */
export function blob(name?: string): ColumnBuilder<Uint8Array, false, false, 'blob'> {
  return columnBuilder({ kind: 'blob' }, name);
}

/** An exact decimal kept as a string: `NUMERIC` / `TEXT`. @example price: numeric().notNull() */
export function numeric(name?: string): ColumnBuilder<string, false, false, 'numeric'> {
  return columnBuilder({ kind: 'numeric' }, name);
}

/**
 * A text column limited to a fixed set of values, enforced by a CHECK constraint on both dialects.
 *
 * @example
 *   priority: enumOf(['low', 'high']).notNull().default('low')
 *   status: enumOf('status', ['open', 'closed'])
 */
export function enumOf<const T extends readonly [string, ...string[]]>(
  values: T,
): ColumnBuilder<T[number], false, false, 'enum'>;
export function enumOf<const T extends readonly [string, ...string[]]>(
  name: string,
  values: T,
): ColumnBuilder<T[number], false, false, 'enum'>;
export function enumOf(nameOrValues: string | readonly string[], maybeValues?: readonly string[]): any {
  const values = typeof nameOrValues === 'string' ? maybeValues : nameOrValues;
  const name = typeof nameOrValues === 'string' ? nameOrValues : undefined;
  if (!values || values.length === 0) throw new UsageError('enumOf() needs at least one value');
  if (new Set(values).size !== values.length)
    throw new UsageError(`enumOf() values repeat: ${values.join(', ')}`);
  return columnBuilder({ kind: 'enum', enumValues: [...values] }, name);
}

/**
 * A column type of your own: its SQL type per dialect and how values cross into and out of the
 * database, either one function for both dialects or one per dialect.
 *
 * @example
 *   const point = customType<{ data: { x: number; y: number }; driverData: string }>({
 *     name: 'point',
 *     sqlType: { sqlite: 'TEXT', postgres: 'TEXT' },
 *     toDriver: (p) => `${p.x},${p.y}`,
 *     fromDriver: (s) => { const [x, y] = s.split(',').map(Number); return { x, y }; },
 *   });
 *   const places = table('places', { at: point('at').notNull() });
 */
export function customType<T extends { data: unknown; driverData?: unknown }>(
  spec: CustomTypeSpec<T['data'], T extends { driverData: infer D } ? D : unknown>,
): (name?: string) => ColumnBuilder<T['data'], false, false, 'custom'> {
  if (!spec.sqlType) throw new UsageError(`customType "${spec.name}" needs a sqlType`);
  return (name?: string) => columnBuilder({ kind: 'custom', custom: spec }, name);
}
