import type { Schema } from '../../schema/schema.js';
import type { FetchMessage } from '../protocol/messages.js';
import { SyncMessageError } from '../protocol/messages.js';
import { decodeKey, type RowRef, rowRef, tableOf } from './apply-changes.js';

/**
 * The rows a `fetch` asks for, as references the server can read (`readRestored`); a table that is
 * not synced or a key that is not the table's whole primary key makes the fetch invalid, with a
 * message naming the row.
 *
 * @example
 *   const refs = fetchRefs(appSchema, fetch.rows);
 *   const rows = await readRestored(db, refs, rules, user);
 */
export function fetchRefs(schema: Schema, rows: FetchMessage['rows']): RowRef[] {
  return rows.map(({ table: name, pk }, i) => {
    const table = tableOf(schema, name);
    let key: Record<string, unknown> | string;
    try {
      key = typeof table === 'string' ? table : decodeKey(table, pk);
    } catch (error) {
      key = `${name}: ${(error as Error).message}`;
    }
    if (typeof key === 'string' || typeof table === 'string') {
      throw new SyncMessageError('invalid_message', `rows[${i}]: ${key}`, { path: `rows[${i}]` });
    }
    return rowRef(table, key);
  });
}
