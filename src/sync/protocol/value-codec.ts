import {
  checkBigint,
  checkBoolean,
  checkBytes,
  checkDate,
  checkEnum,
  checkInteger,
  checkJson,
  checkNumber,
  checkNumeric,
  checkString,
  checkUuid,
  invalid,
} from '../../dialect/value-checks.js';
import { is } from '../../entity.js';
import { InvalidValueError, SyncProtocolError } from '../../errors.js';
import type { ColumnType, ColumnTypeKind } from '../../schema/column-type.js';
import type { AnyTable } from '../../schema/table.js';
import { decodeBase64, encodeBase64 } from './base64.js';

/**
 * A value JSON can carry as is: what `JSON.parse` returns. Column values travel in sync messages
 * in this form, one per column type (see `encodeValue`).
 *
 * @example
 *   const wire: JsonValue = { id: '2f1c…', done: true, tags: ['a', 'b'] };
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A row in a sync message: SQL column name to encoded value. It may hold only some of a table's
 * columns (an update carries the columns it changed).
 *
 * @example
 *   const row: JsonRow = { id: '2f1c…', updated_at: 1_700_000_000_000 };
 */
export type JsonRow = { [column: string]: JsonValue };

interface ValueCodec {
  readonly encode: (value: unknown) => JsonValue;
  readonly decode: (json: unknown) => unknown;
}

const DECIMAL_INTEGER = /^-?(0|[1-9][0-9]*)$/;
/** The range a Date can hold (ECMA-262 section 21.4.1.22). */
const MAX_DATE_MS = 8.64e15;

/** A real's infinities travel as these strings (JSON has no Infinity); NaN is not synced (SQLite has none). */
const INFINITIES: ReadonlyMap<string, number> = new Map([
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
]);

function encodeReal(value: unknown): number | string {
  const number = checkNumber(value);
  if (number === Number.POSITIVE_INFINITY) return 'Infinity';
  if (number === Number.NEGATIVE_INFINITY) return '-Infinity';
  // JSON has no -0: it would arrive as 0 anyway, so say so here rather than on the other side.
  return number === 0 ? 0 : number;
}

function decodeReal(json: unknown): number {
  if (typeof json === 'string') {
    const infinity = INFINITIES.get(json);
    return infinity ?? invalid('a finite number, or "Infinity" or "-Infinity"', json);
  }
  const number = checkNumber(json);
  return Number.isFinite(number) ? number : invalid('a finite number, or "Infinity" or "-Infinity"', json);
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * True when `value` is exactly what JSON can carry: null, booleans, strings, finite numbers,
 * arrays and plain objects of those, without cycles. No `undefined`, Dates, bigints or class
 * instances, which JSON would drop or change.
 */
function isJsonValue(value: unknown, ancestors: Set<object> = new Set()): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || ancestors.has(value)) return false;
  if (!Array.isArray(value) && !isPlainObject(value)) return false;
  ancestors.add(value);
  try {
    const items = Array.isArray(value) ? value : Object.values(value);
    // Holes in an array would be written as null: not the same value.
    if (Array.isArray(value) && Object.keys(value).length !== value.length) return false;
    return items.every((item) => isJsonValue(item, ancestors));
  } finally {
    ancestors.delete(value);
  }
}

/** Turns a value into the JSON value the database would store for it (what `JSON.stringify` keeps). */
function toJsonValue(value: unknown): JsonValue {
  if (isJsonValue(value)) return value as JsonValue;
  const text = checkJson(value);
  // A toJSON() returning undefined makes JSON.stringify return undefined, not a string.
  if (typeof text !== 'string') return invalid('a JSON value', value);
  return JSON.parse(text) as JsonValue;
}

function checkJsonValue(expected: string): (value: unknown) => JsonValue {
  return (value) => (isJsonValue(value) ? (value as JsonValue) : invalid(expected, value));
}

const checkPureJson = checkJsonValue(
  'a JSON value (null, boolean, finite number, string, array, plain object)',
);

const builtinCodecs: Record<Exclude<ColumnTypeKind, 'enum' | 'custom'>, ValueCodec> = {
  uuid: { encode: checkUuid, decode: checkUuid },
  text: { encode: checkString, decode: checkString },
  integer: { encode: checkInteger, decode: checkInteger },
  bigint: {
    encode: (value) => checkBigint(value).toString(),
    decode: (json) =>
      typeof json === 'string' && DECIMAL_INTEGER.test(json)
        ? checkBigint(BigInt(json))
        : invalid('a 64-bit integer as a decimal string (like "-42")', json),
  },
  real: { encode: encodeReal, decode: decodeReal },
  boolean: { encode: checkBoolean, decode: checkBoolean },
  timestamp: {
    encode: (value) => checkDate(value).getTime(),
    decode: (json) =>
      Number.isSafeInteger(json) && Math.abs(json as number) <= MAX_DATE_MS
        ? new Date(json as number)
        : invalid('a timestamp as a whole number of ms since 1970-01-01 UTC', json),
  },
  json: { encode: toJsonValue, decode: checkPureJson },
  blob: {
    encode: (value) => encodeBase64(checkBytes(value)),
    decode: (json) =>
      decodeBase64(typeof json === 'string' ? json : invalid('bytes as a base64 string', json)),
  },
  numeric: {
    encode: checkNumeric,
    decode: (json) =>
      typeof json === 'string' ? checkNumeric(json) : invalid('a decimal number as a string', json),
  },
};

const derivedCodecs = new WeakMap<ColumnType, ValueCodec>();

function codecFor(type: ColumnType): ValueCodec {
  if (type.kind !== 'enum' && type.kind !== 'custom') {
    const codec = builtinCodecs[type.kind];
    if (!codec) throw new SyncProtocolError(`no sync encoding for the column type "${String(type.kind)}"`);
    return codec;
  }
  let codec = derivedCodecs.get(type);
  if (!codec) {
    if (type.kind === 'enum') {
      const check = checkEnum(type.enumValues ?? []);
      codec = { encode: check, decode: check };
    } else {
      // A custom type's app value could be anything; it syncs when it is plain JSON, and anything
      // else is refused rather than silently changed on the way (a Date would arrive as a string).
      const check = checkJsonValue(
        `a plain JSON value (custom type "${type.custom?.name ?? '?'}" values sync only as null, booleans, finite numbers, strings, arrays and plain objects)`,
      );
      codec = { encode: check, decode: check };
    }
    derivedCodecs.set(type, codec);
  }
  return codec;
}

function typeName(type: ColumnType): string {
  return type.kind === 'custom' ? `custom type "${type.custom?.name ?? '?'}"` : type.kind;
}

/** "an integer value", "a custom type "point" value": the subject of a message about a lone value. */
function valueLabel(type: ColumnType): string {
  const name = typeName(type);
  return `${type.kind === 'integer' || type.kind === 'enum' ? 'an' : 'a'} ${name} value`;
}

/**
 * One direction of one column type's codec as a function, resolved once: null stays null,
 * `undefined` is refused, and a wrong value throws `SyncProtocolError` saying what `where` is.
 * The codec is looked up at the first value that needs it, so a type without a sync encoding
 * fails then, as it always did, and not while a table's converters are built.
 */
function converter(
  direction: 'encode' | 'decode',
  type: ColumnType,
  where: string,
): (value: unknown) => unknown {
  const action = direction === 'encode' ? 'cannot encode' : 'cannot decode';
  let convert: ((value: unknown) => unknown) | undefined;
  return (value) => {
    if (value === null) return null;
    if (value === undefined) {
      throw new SyncProtocolError(`${action} ${where}: got undefined, which JSON cannot carry (use null)`);
    }
    try {
      convert ??= codecFor(type)[direction];
      return convert(value);
    } catch (error) {
      if (is(error, InvalidValueError) || is(error, SyncProtocolError)) {
        throw new SyncProtocolError(`${action} ${where}: ${error.message}`, { cause: error });
      }
      throw error;
    }
  };
}

/**
 * Encodes one column value for a sync message, so that `decodeValue` on any replica (SQLite or
 * PostgreSQL) gives back an equal value. Encodings: bigint as a decimal string; timestamp as a
 * whole number of ms since the epoch (UTC, the precision both dialects keep); blob as padded
 * base64; numeric as its string; uuid lower-cased; integer and real as finite numbers (-0 becomes
 * 0), a real's infinities as the strings "Infinity" and "-Infinity" (NaN is refused: SQLite has
 * none); json as the JSON value the database would store; enum checked against its values; custom
 * types only when their value is plain JSON; null as null. A value of the wrong shape throws
 * `SyncProtocolError` saying what was expected and what came.
 *
 * @example
 *   encodeValue({ kind: 'bigint' }, 2n ** 60n);                 // '1152921504606846976'
 *   encodeValue(todos.updatedAt.type, new Date(0));             // 0
 */
export function encodeValue(type: ColumnType, value: unknown): JsonValue {
  return valueEncoder(type)(value);
}

/**
 * `encodeValue` for one column type, resolved once (as `valueDecoder` is for decoding).
 *
 * @example
 *   const encode = valueEncoder(todos.updatedAt.type);
 *   encode(new Date(0)); // 0
 */
export function valueEncoder(type: ColumnType): (value: unknown) => JsonValue {
  return converter('encode', type, valueLabel(type)) as (value: unknown) => JsonValue;
}

/**
 * Decodes one column value from a sync message: the inverse of `encodeValue`, giving the app
 * value (bigint, Date, Uint8Array, ...). It accepts only the form `encodeValue` writes (a bigint
 * must be a string, a timestamp a number), so a value that would lose precision or change
 * meaning is refused with a `SyncProtocolError` instead.
 *
 * @example
 *   decodeValue({ kind: 'timestamp' }, 1_700_000_000_000); // Date 2023-11-14T22:13:20.000Z
 *   decodeValue({ kind: 'blob' }, 'AP8=');                 // Uint8Array [0, 255]
 */
export function decodeValue(type: ColumnType, json: unknown): unknown {
  return valueDecoder(type)(json);
}

/**
 * `decodeValue` for one column type, resolved once: the same results and errors, without looking
 * up the codec and building the error label again for every value.
 *
 * @example
 *   const decode = valueDecoder(todos.updatedAt.type);
 *   decode(1_700_000_000_000); // Date 2023-11-14T22:13:20.000Z
 */
export function valueDecoder(type: ColumnType): (json: unknown) => unknown {
  return converter('decode', type, valueLabel(type));
}

function checkRowObject(table: AnyTable, row: unknown, action: string): Record<string, unknown> {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) {
    throw new SyncProtocolError(
      `${action} a row of table "${table.$name}": expected an object of column values, got ${row === null ? 'null' : Array.isArray(row) ? 'an array' : typeof row}`,
    );
  }
  return row as Record<string, unknown>;
}

function unknownColumn(table: AnyTable, name: string, action: string): never {
  const known = table.$columnList.map((c) => c.name).join(', ');
  throw new SyncProtocolError(
    `${action} a row of table "${table.$name}": it has no column "${name}" (its columns: ${known}); rows are keyed by SQL column name`,
  );
}

type RowConverters = ReadonlyMap<string, (value: unknown) => unknown>;

const rowConverters = {
  encode: new WeakMap<AnyTable, RowConverters>(),
  decode: new WeakMap<AnyTable, RowConverters>(),
};

/** A table's converters per SQL column name for one direction, built once per table. */
function convertersOf(table: AnyTable, direction: 'encode' | 'decode'): RowConverters {
  let converters = rowConverters[direction].get(table);
  if (!converters) {
    converters = new Map(
      table.$columnList.map((column) => [
        column.name,
        converter(direction, column.type, `${table.$name}.${column.name} (${typeName(column.type)})`),
      ]),
    );
    rowConverters[direction].set(table, converters);
  }
  return converters;
}

/**
 * The encoder `encodeRow` uses for one column of `table` (by SQL name), built once per table: for
 * code that reads rows in another form, such as arrays, and must encode their values exactly as
 * `encodeRow` would. Throws `SyncProtocolError` for a name that is not a column of the table.
 *
 * @example
 *   const encode = columnEncoder(todos, 'updated_at');
 *   encode(new Date(0)); // 0
 */
export function columnEncoder(table: AnyTable, name: string): (value: unknown) => JsonValue {
  const encode = convertersOf(table, 'encode').get(name) ?? unknownColumn(table, name, 'cannot encode');
  return encode as (value: unknown) => JsonValue;
}

/**
 * Encodes a row (or the changed part of one) of `table` for a sync message. The row is keyed by
 * SQL column name (`owner_id`, not `ownerId`), holds any subset of the columns, and each value is
 * encoded with `encodeValue` for its column's type. A key that is not a column of the table throws
 * `SyncProtocolError` naming the table and the key; `undefined` values are left out, as JSON does.
 *
 * @example
 *   encodeRow(todos, { id, done: true, updated_at: new Date() });
 *   // { id: '…', done: true, updated_at: 1700000000000 }
 */
export function encodeRow(table: AnyTable, row: Record<string, unknown>): JsonRow {
  return encodeRowInto(table, row, undefined);
}

/**
 * `encodeRow`, except that a column whose value has no encoding (a real NaN, a timestamp at
 * infinity: values a client's SQLite cannot hold) is left out of the row and its name added to
 * `skipped`, instead of failing the whole row. The server sends rows this way, so one such value
 * never stops a stream; a client that gets a row without every column fetches it and reports it.
 *
 * @example
 *   const skipped: string[] = [];
 *   const json = encodeRowSkipping(measurements, row, skipped); // skipped: ['ratio'] for a NaN
 */
export function encodeRowSkipping(table: AnyTable, row: Record<string, unknown>, skipped: string[]): JsonRow {
  return encodeRowInto(table, row, skipped);
}

/** `encodeRow` (no `skipped`: a value without an encoding throws) and `encodeRowSkipping`. */
function encodeRowInto(
  table: AnyTable,
  row: Record<string, unknown>,
  skipped: string[] | undefined,
): JsonRow {
  const action = 'cannot encode';
  const source = checkRowObject(table, row, action);
  const encoders = convertersOf(table, 'encode');
  const out: JsonRow = {};
  for (const name of Object.keys(source)) {
    const value = source[name];
    if (value === undefined) continue;
    const encode = encoders.get(name) ?? unknownColumn(table, name, action);
    if (!skipped) {
      out[name] = encode(value) as JsonValue;
      continue;
    }
    try {
      out[name] = encode(value) as JsonValue;
    } catch (error) {
      if (!is(error, InvalidValueError) && !is(error, SyncProtocolError)) throw error;
      skipped.push(name);
    }
  }
  return out;
}

/**
 * Decodes a row of `table` from a sync message: the inverse of `encodeRow`, keyed by SQL column
 * name, holding the columns the message carried. A key that is not a column of the table, a row
 * that is not an object, or a value of the wrong shape throws `SyncProtocolError` naming the table
 * and column.
 *
 * @example
 *   const row = decodeRow(todos, JSON.parse(message).row);
 *   row.updated_at instanceof Date; // true
 */
export function decodeRow(table: AnyTable, json: unknown): Record<string, unknown> {
  const action = 'cannot decode';
  const source = checkRowObject(table, json, action);
  const decoders = convertersOf(table, 'decode');
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(source)) {
    const decode = decoders.get(name) ?? unknownColumn(table, name, action);
    out[name] = decode(source[name]);
  }
  return out;
}
