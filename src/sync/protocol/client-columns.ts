import type { AnyTable } from '../../schema/table.js';

/** The columns an app was built with, as its hello tells them: by table, each column's type. */
export type ClientColumns = Readonly<Record<string, Readonly<Record<string, string>>>>;

/**
 * The columns of the synced tables of `schema`, as a client sends them in its hello: by table, each
 * column's logical type kind.
 *
 * @example
 *   hello.columns = clientColumns(appSchema); // { todos: { id: 'uuid', title: 'text', ... } }
 */
export function clientColumns(tables: readonly AnyTable[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const table of tables) {
    out[table.$name] = Object.fromEntries(table.$columnList.map((c) => [c.name, c.type.kind]));
  }
  return out;
}
