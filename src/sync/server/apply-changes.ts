import { is } from '../../entity.js';
import { SynclineError } from '../../errors.js';
import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import type { BatchJson } from '../protocol/messages-client.js';
import { decodeRow, type JsonValue } from '../protocol/value-codec.js';
import type { RuleSet } from './rules.js';

/**
 * One row a batch names: its table, its primary key (SQL name → app value), and `key`, a string
 * that is equal for equal keys (the map key of everything the push code keeps per row).
 *
 * @example
 *   const row: RowRef = { table: todos, pk: { id }, key: '["…"]', pkJson: { id } };
 */
export interface RowRef {
  readonly table: AnyTable;
  readonly pk: Record<string, unknown>;
  readonly key: string;
  /** The key as the capture trigger writes it into `_syncline_stamps.pk`. */
  readonly pkJson: Record<string, JsonValue>;
}

/**
 * A pushed change, decoded and checked against the schema: `values` are app values by SQL name,
 * without the key columns (an insert's row is `{ ...pk, ...values }`).
 *
 * @example
 *   if (change.op === 'update') set(change.ref, change.values);
 */
export interface DecodedChange {
  readonly op: 'insert' | 'update' | 'delete';
  readonly ref: RowRef;
  readonly values: Record<string, unknown>;
  readonly hlc: string;
}

/**
 * What `decodeBatch` made of a batch: the changes it could decode, the distinct rows they name
 * (what a rejection restores), and `reason` when some change could not be decoded or is not
 * allowed on its table (the batch is then rejected whole).
 *
 * @example
 *   const decoded = decodeBatch(schema, rules, batch);
 *   if (decoded.reason) return reject(decoded.reason, decoded.touched);
 */
export interface DecodedBatch {
  readonly changes: DecodedChange[];
  readonly touched: RowRef[];
  readonly reason: string | undefined;
}

/** A timestamp as `to_jsonb` writes it in a UTC session: `2024-01-02T03:04:05.6+00:00`. */
function timestampJson(date: Date): string {
  const iso = date.toISOString();
  const fraction = iso.slice(19, 23).replace(/\.?0+$/, '');
  return `${iso.slice(0, 19)}${fraction}+00:00`;
}

/** One key value in the form the capture trigger logs it (`jsonb_build_object`, decimals as text). */
function keyValueJson(kind: string, value: unknown): JsonValue {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return timestampJson(value);
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (kind === 'numeric') return String(value);
  return value as JsonValue;
}

/**
 * A row reference from its key values (SQL name → app value). The key string and `pkJson` match
 * what the capture trigger writes for the same row for every key type whose text PostgreSQL
 * spells one way; a timestamp key matches when the writer's session is in UTC.
 *
 * @example
 *   const ref = rowRef(todos, { id: '2f1c…' });
 */
export function rowRef(table: AnyTable, pk: Record<string, unknown>): RowRef {
  const pkJson: Record<string, JsonValue> = {};
  const parts: JsonValue[] = [];
  for (const column of table.$primaryKeyColumns) {
    const json = keyValueJson(column.type.kind, pk[column.name]);
    pkJson[column.name] = json;
    parts.push(json);
  }
  return { table, pk, key: JSON.stringify([table.$name, ...parts]), pkJson };
}

function reasonOf(error: unknown): string {
  return is(error, SynclineError) ? error.message : String((error as Error)?.message ?? error);
}

/**
 * The change's table, or why it cannot be written.
 *
 * @example
 *   const table = tableOf(appSchema, 'todos'); // a string says why not
 */
export function tableOf(schema: Schema, name: string): AnyTable | string {
  const table = schema.tableByName(name);
  if (!table)
    return `unknown table "${name}": the server's schema has no such table; is the client's schema newer?`;
  if (table.$local) return `${name}: a local table never syncs`;
  return table;
}

/**
 * A primary key from its JSON form (every key column, none null), or why it is not one.
 *
 * @example
 *   const pk = decodeKey(todos, { id: '2f1c…' }); // a string says why not
 */
export function decodeKey(table: AnyTable, json: Record<string, unknown>): Record<string, unknown> | string {
  const names = table.$primaryKeyColumns.map((c) => c.name);
  const given = Object.keys(json);
  if (given.length !== names.length || !names.every((n) => Object.hasOwn(json, n))) {
    return `${table.$name}: the primary key must have exactly the columns ${names.join(', ')}, got ${given.join(', ') || 'none'}`;
  }
  const pk = decodeRow(table, json);
  const missing = names.find((n) => pk[n] === null);
  return missing ? `${table.$name}: the primary key column ${missing} cannot be null` : pk;
}

/**
 * Decodes a batch against the schema: tables and columns by SQL name, values with the value
 * codec, keys complete and not null, key columns in `values` equal to the key (a change of key
 * is a delete plus an insert), and the table writable under the rules for this user. Decodes
 * every change it can, so a rejection still restores every row the batch touched.
 *
 * @example
 *   const { changes, touched, reason } = decodeBatch(appSchema, ruleSet, batch);
 */
export function decodeBatch(schema: Schema, rules: RuleSet, batch: BatchJson): DecodedBatch {
  const changes: DecodedChange[] = [];
  const touched = new Map<string, RowRef>();
  let reason: string | undefined;
  const fail = (why: string) => {
    reason ??= why;
  };
  for (const change of batch.changes) {
    const table = tableOf(schema, change.table);
    if (typeof table === 'string') {
      fail(table);
      continue;
    }
    let pk: Record<string, unknown> | string;
    let values: Record<string, unknown> = {};
    try {
      pk = decodeKey(table, change.pk);
      if (change.values) values = decodeRow(table, change.values);
    } catch (error) {
      fail(reasonOf(error));
      continue;
    }
    if (typeof pk === 'string') {
      fail(pk);
      continue;
    }
    const ref = rowRef(table, pk);
    if (!touched.has(ref.key)) touched.set(ref.key, ref);
    const refusal = rules.writeRefusal(table);
    if (refusal) {
      fail(refusal);
      continue;
    }
    const rest: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(values)) {
      if (!Object.hasOwn(pk, name)) rest[name] = value;
      else if (ref.key !== rowRef(table, { ...pk, [name]: value }).key) {
        fail(
          `${table.$name}: a change cannot alter the primary key column ${name}; delete the row and insert it under the new key`,
        );
      }
    }
    changes.push({ op: change.op, ref, values: rest, hlc: change.hlc });
  }
  return { changes, touched: [...touched.values()], reason };
}
