/**
 * Values and rows in one comparable form, whichever side they come from: a SQLite replica, the
 * server's Database, a push frame (the sync protocol's JSON forms) or the server's change log.
 * bigint, Date and Uint8Array get a tagged text; json is written with its keys sorted (jsonb
 * reorders them).
 */
import type { AnyTable } from '../src/schema/table.js';

/**
 * The comparable text of one app value.
 *
 * @example
 *   canonValue(2n ** 60n); // '1152921504606846976n'
 *   canonValue({ b: 1, a: [2] }) === canonValue({ a: [2], b: 1 }); // true
 */
export function canonValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date) return `D${value.toISOString()}`;
  if (value instanceof Uint8Array) return `X${Buffer.from(value).toString('hex')}`;
  if (typeof value === 'object') return stableJson(value);
  return JSON.stringify(value);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * A row from `db.select()` (keys are TypeScript keys) as SQL column name → comparable text.
 *
 * @example
 *   const row = canonRow(items, (await db.select().from(items))[0]);
 *   row.owner_id; // '"00000000-…"'
 */
export function canonRow(table: AnyTable, row: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const column of table.$columnList) out[column.name] = canonValue(row[column.key]);
  return out;
}

/**
 * App values keyed by SQL name (a decoded push or log row) as comparable texts.
 *
 * @example
 *   canonValues({ qty: 5n }); // { qty: '5n' }
 */
export function canonValues(values: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, canonValue(v)]));
}
