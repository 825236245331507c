import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import { SyncMessageError, shown } from './messages-error.js';

/**
 * The synced table a message names (by SQL name), for a shape or a filter's subquery. Throws
 * `SyncMessageError` with code `unknown_table`, at `path`, naming the synced tables, for a name
 * the schema lacks or a `localTable` (which never syncs).
 *
 * @example
 *   const table = syncedTableAt(appSchema, shape.table, 'shapes[0].table');
 */
export function syncedTableAt(schema: Schema, name: string, path: string): AnyTable {
  const table = schema.tableByName(name);
  if (table && !table.$local) return table;
  const synced = schema.tableList.filter((t) => !t.$local).map((t) => t.$name);
  const why = table ? 'is a local table, which never syncs' : 'is not in the schema';
  throw new SyncMessageError(
    'unknown_table',
    `${path}: table ${shown(name)} ${why}; the synced tables are ${synced.join(', ') || '(none)'}`,
    { path },
  );
}
