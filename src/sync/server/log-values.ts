import { postgresPhysicalType } from '../../dialect/postgres/postgres-types.js';
import { SyncProtocolError } from '../../errors.js';
import type { AnyColumn } from '../../schema/column.js';
import type { ColumnType } from '../../schema/column-type.js';
import type { AnyTable } from '../../schema/table.js';
import { encodeRow, encodeRowSkipping, type JsonRow } from '../protocol/value-codec.js';

/**
 * `to_jsonb` text of a timestamp: `2024-01-02T03:04:05.123456+00:00`, or without the offset for
 * `timestamp without time zone`. Years may have more than 4 digits.
 */
const ISO_TIMESTAMP =
  /^(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|Z)?$/;

/**
 * A logged timestamp as a Date, cut to the millisecond as the drivers' own parsers do. Text
 * without an offset (a `timestamp without time zone`) is read as UTC, which is how syncline
 * stores points in time; reading it in the server's local zone would move it.
 */
function parseTimestamp(text: string): Date {
  const m = ISO_TIMESTAMP.exec(text);
  if (!m) return new Date(text === 'infinity' || text === '-infinity' ? Number.NaN : text);
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const date = new Date(0);
  date.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  date.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), ms);
  if (m[8]) {
    const offsetSeconds = Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0);
    date.setTime(date.getTime() - (m[8] === '-' ? -1 : 1) * offsetSeconds * 1000);
  }
  return date;
}

/** `bytea` text in either output format: `\x0aff` (hex, the default) or `a\\000b` (escape). */
function parseBytea(text: string): Uint8Array {
  if (text.startsWith('\\x')) {
    const bytes = new Uint8Array((text.length - 2) / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(text.slice(2 + i * 2, 4 + i * 2), 16);
    return bytes;
  }
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '\\') {
      out.push(text.charCodeAt(i));
    } else if (text[i + 1] === '\\') {
      out.push(92);
      i++;
    } else {
      out.push(Number.parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    }
  }
  return Uint8Array.from(out);
}

function wrong(column: AnyColumn, expected: string, value: unknown): never {
  throw new SyncProtocolError(
    `cannot decode the logged value of ${column.table.$name}.${column.name}: expected ${expected}, got ${JSON.stringify(value)}; was the change log written by another version of installCapture()?`,
  );
}

/** What a driver would have returned for this custom type, rebuilt from its JSON text. */
function customDriverValue(type: ColumnType, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const sqlType = postgresPhysicalType(type).sqlType.trim().toLowerCase();
  if (sqlType.startsWith('timestamp')) return parseTimestamp(value);
  if (sqlType === 'bytea') return parseBytea(value);
  return value;
}

function decodeLogged(column: AnyColumn, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  const type = column.type;
  switch (type.kind) {
    case 'bigint':
      // Numbers come from logs written before bigint was logged as text.
      if (typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value)))
        return BigInt(value);
      return wrong(column, 'a 64-bit integer as a string', value);
    case 'numeric':
      return typeof value === 'string' || typeof value === 'number'
        ? String(value)
        : wrong(column, 'a decimal number as a string', value);
    case 'real':
      // NaN and the infinities are JSON strings in to_jsonb.
      if (typeof value === 'number') return value;
      if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return Number(value);
      return wrong(column, 'a number', value);
    case 'timestamp':
      return typeof value === 'string' ? parseTimestamp(value) : wrong(column, 'an ISO timestamp', value);
    case 'blob':
      return typeof value === 'string' ? parseBytea(value) : wrong(column, 'bytea text', value);
    case 'custom':
      return postgresPhysicalType(type).fromDriver(customDriverValue(type, value));
    default:
      // uuid, text, enum, integer, boolean and json: to_jsonb wrote the app value itself.
      return value;
  }
}

/**
 * Turns a row image from the server's change log (`CapturedChange.row` or `oldValues`: keys are
 * SQL column names, values as the capture trigger wrote them) into app values, the same values a
 * `db.select()` of that row returns: bigint from its decimal string, Date from ISO text (text
 * without an offset is UTC), Uint8Array from `\x` hex, numeric as its string, json as is, custom
 * types through their PostgreSQL `fromDriver`. Keys that are not columns of `table` (columns
 * added outside the schema) are left out.
 *
 * @example
 *   const row = decodeLogRow(todos, change.row); // { id: '…', updated_at: Date, tags: ['a'] }
 */
export function decodeLogRow(
  table: AnyTable,
  logged: Record<string, unknown>,
  skipped?: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(logged)) {
    const column = table.$columnBySqlName(name);
    if (!column) continue;
    if (!skipped) {
      out[name] = decodeLogged(column, logged[name]);
      continue;
    }
    // With `skipped`, a value that cannot be decoded is left out and named there.
    try {
      out[name] = decodeLogged(column, logged[name]);
    } catch {
      skipped.push(name);
    }
  }
  return out;
}

/**
 * A logged row image encoded for a sync message: `decodeLogRow`, then `encodeRow` (the value
 * codec), keyed by SQL column name. With `skipped`, a column that cannot be decoded or encoded (a
 * real NaN, a timestamp at infinity) is left out and named there instead of failing the row.
 *
 * @example
 *   const change: ChangeJson = { table: 'todos', op: 'insert', pk, values: logRowToJson(todos, c.row), hlc: c.hlc };
 */
export function logRowToJson(table: AnyTable, logged: Record<string, unknown>, skipped?: string[]): JsonRow {
  if (!skipped) return encodeRow(table, decodeLogRow(table, logged));
  return encodeRowSkipping(table, decodeLogRow(table, logged, skipped), skipped);
}
