import type { AnyTable } from '../../schema/table.js';
import type { Node } from '../../sql/nodes.js';

/** A word of raw SQL text that could name a column: a bare or a double-quoted identifier. */
const IDENTIFIER = /"((?:[^"]|"")*)"|[A-Za-z_][A-Za-z0-9_$]*/g;

/**
 * The columns of `table` a condition may read (SQL names), counting too many rather than too few:
 * columns of the table (under any alias, in subqueries too), references by name, and every word of
 * raw SQL text that is one of its column names; `'all'` when raw SQL selects `*`. The shape filter
 * reads from the table what a change's logged row left out, when a condition needs it.
 *
 * @example
 *   referencedColumns(and(eq(todos.listId, id), like(todos.note, '%x%')).node, todos); // Set { 'list_id', 'note' }
 */
export function referencedColumns(where: Node, table: AnyTable): ReadonlySet<string> | 'all' {
  const names = new Set(table.$columnList.map((c) => c.name));
  const lower = new Map(table.$columnList.map((c) => [c.name.toLowerCase(), c.name]));
  const found = new Set<string>();
  let all = false;
  const seen = new Set<object>();
  const visit = (value: unknown): void => {
    if (all || value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    const node = value as { kind?: unknown } & Record<string, unknown>;
    switch (node.kind) {
      case 'column': {
        const column = node as unknown as { name: string; table: AnyTable };
        if (column.table.$name === table.$name && names.has(column.name)) found.add(column.name);
        return;
      }
      case 'excluded':
        visit(node.column);
        return;
      case 'ref': {
        const name = node.name as string;
        if (names.has(name)) found.add(name);
        return;
      }
      case 'raw':
        for (const chunk of node.chunks as readonly (string | Node)[]) {
          if (typeof chunk !== 'string') {
            visit(chunk);
            continue;
          }
          if (chunk.includes('*')) all = true;
          for (const match of chunk.matchAll(IDENTIFIER)) {
            const name =
              match[1] !== undefined ? match[1].replaceAll('""', '"') : lower.get(match[0].toLowerCase());
            if (name !== undefined && names.has(name)) found.add(name);
          }
        }
        return;
      case 'param':
      case 'placeholder':
      case 'tableRef':
      case 'identifier':
      case 'star':
        return;
      default:
        for (const key of Object.keys(node)) visit(node[key]);
    }
  };
  visit(where);
  return all ? 'all' : found;
}
