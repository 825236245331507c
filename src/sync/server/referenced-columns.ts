import type { AnyTable } from '../../schema/table.js';
import type { Node } from '../../sql/nodes.js';

/** A word of raw SQL text that could name a column or a table: a bare or a double-quoted identifier. */
const IDENTIFIER = /"((?:[^"]|"")*)"|[A-Za-z_][A-Za-z0-9_$]*/g;

/**
 * What a walk of a condition meets: columns and tables read from (with `inside`, the table of the
 * innermost subquery `subquery` took, if any), references by name, raw SQL words.
 */
interface Visitor {
  column(table: string, name: string, inside: string | undefined): void;
  tableRef(table: string, inside: string | undefined): void;
  /** A column named by a `ref` node (of a subquery, or of a table known only by name). */
  ref(name: string): void;
  /** A word of raw SQL text: quoted (exact) or bare (any case); `star` for a text with `*`. */
  word(word: string, quoted: boolean): void;
  star(): void;
  /**
   * A query that reads one table alone (`SELECT ... FROM t WHERE w`, no join): true to walk the
   * rest of it (not its FROM) with `t` as `inside`; false walks it like any other node.
   */
  subquery?(table: string, where: Node | undefined): boolean;
}

/** Walks a condition's tree (subqueries too), calling `visitor` for what can name data. */
function walk(where: Node, visitor: Visitor): void {
  const seen = new Set<object>();
  const visit = (value: unknown, inside: string | undefined): void => {
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (Array.isArray(value)) {
      for (const item of value) visit(item, inside);
      return;
    }
    const node = value as { kind?: unknown } & Record<string, unknown>;
    switch (node.kind) {
      case 'select': {
        const from = node.from as { kind: string; table?: AnyTable } | undefined;
        if (
          visitor.subquery &&
          from?.kind === 'tableRef' &&
          (node.joins as unknown[]).length === 0 &&
          visitor.subquery(from.table!.$name, node.where as Node | undefined)
        ) {
          for (const key of Object.keys(node)) if (key !== 'from') visit(node[key], from.table!.$name);
          return;
        }
        for (const key of Object.keys(node)) visit(node[key], inside);
        return;
      }
      case 'column': {
        const column = node as unknown as { name: string; table: AnyTable };
        visitor.column(column.table.$name, column.name, inside);
        return;
      }
      case 'excluded':
        visit(node.column, inside);
        return;
      case 'ref':
        visitor.ref(node.name as string);
        return;
      case 'tableRef':
        visitor.tableRef((node.table as AnyTable).$name, inside);
        return;
      case 'raw':
        for (const chunk of node.chunks as readonly (string | Node)[]) {
          if (typeof chunk !== 'string') {
            visit(chunk, inside);
            continue;
          }
          if (chunk.includes('*')) visitor.star();
          for (const match of chunk.matchAll(IDENTIFIER)) {
            if (match[1] !== undefined) visitor.word(match[1].replaceAll('""', '"'), true);
            else visitor.word(match[0], false);
          }
        }
        return;
      case 'param':
      case 'placeholder':
      case 'identifier':
      case 'star':
        return;
      default:
        for (const key of Object.keys(node)) visit(node[key], inside);
    }
  };
  visit(where, undefined);
}

/** Matches a raw SQL word to one of `names`: exactly when quoted, in any case when bare. */
function matcher(names: readonly string[]): (word: string, quoted: boolean) => string | undefined {
  const exact = new Set(names);
  const lower = new Map(names.map((n) => [n.toLowerCase(), n]));
  return (word, quoted) => (quoted ? (exact.has(word) ? word : undefined) : lower.get(word.toLowerCase()));
}

/**
 * The columns of `table` a condition may read (SQL names), counting too many rather than too few:
 * columns of the table (under any alias, in subqueries too), references by name, and every word of
 * raw SQL text that is one of its column names; `'all'` when raw SQL has a `*`. The shape filter
 * reads from the table what a change's logged row left out, when a condition needs it.
 *
 * @example
 *   referencedColumns(and(eq(todos.listId, id), like(todos.note, '%x%')).node, todos); // Set { 'list_id', 'note' }
 */
export function referencedColumns(where: Node, table: AnyTable): ReadonlySet<string> | 'all' {
  const names = table.$columnList.map((c) => c.name);
  const match = matcher(names);
  const found = new Set<string>();
  let all = false;
  walk(where, {
    column: (owner, name) => {
      if (owner === table.$name && names.includes(name)) found.add(name);
    },
    tableRef: () => {},
    ref: (name) => {
      if (names.includes(name)) found.add(name);
    },
    word: (word, quoted) => {
      const name = match(word, quoted);
      if (name !== undefined) found.add(name);
    },
    star: () => {
      all = true;
    },
  });
  return all ? 'all' : found;
}

/**
 * The other tables a shape's condition reads (through subqueries, or named in raw SQL), each with
 * the columns it reads of them (`'all'` when it cannot tell): a change to such a table may move
 * rows of the shape's table in or out without touching them. Names are SQL names; `tables` are
 * the schema's, for raw SQL text.
 *
 * @example
 *   tablesReferenced(rule.node, todos, schema.tableList); // Map { 'members' => Set { 'list_id', 'user_id' } }
 */
export function tablesReferenced(
  where: Node,
  table: AnyTable,
  tables: readonly AnyTable[],
): Map<string, ReadonlySet<string> | 'all'> {
  const found = new Map<string, Set<string> | 'all'>();
  const add = (name: string, column: string | 'all') => {
    if (name === table.$name) return;
    const columns = found.get(name);
    if (columns === 'all') return;
    if (column === 'all') found.set(name, 'all');
    else found.set(name, (columns ?? new Set()).add(column));
  };
  const match = matcher(tables.map((t) => t.$name));
  walk(where, {
    column: (owner, name) => add(owner, name),
    // Read from: a change of it matters even when no column of it is named (EXISTS).
    tableRef: (name) => {
      if (name !== table.$name && !found.has(name)) found.set(name, new Set());
    },
    ref: (name) => {
      const table = match(name, true);
      if (table !== undefined) add(table, 'all');
    },
    word: (word, quoted) => {
      const name = match(word, quoted);
      if (name !== undefined) add(name, 'all');
    },
    star: () => {},
  });
  for (const [name, columns] of found) if (columns !== 'all' && columns.size === 0) found.set(name, 'all');
  return found;
}

/**
 * For each other table a condition reads, the WHERE clauses of the subqueries that read it alone
 * (`SELECT ... FROM t WHERE w`, no join; undefined for one without WHERE), or `'any'` when it is
 * read some other way (a join, raw SQL, a column outside such a subquery). A row of `t` that none
 * of those clauses can match, before or after a change, cannot change what the subqueries return,
 * so the change moves no row of `table` in or out.
 *
 * @example
 *   subqueryFilters(inArray(todos.listId, db.select({ id: members.listId }).from(members).where(eq(members.userId, 'u'))).node, todos);
 *   // Map { 'members' => [eq(members.userId, 'u').node] }
 */
export function subqueryFilters(
  where: Node,
  table: AnyTable,
): Map<string, readonly (Node | undefined)[] | 'any'> {
  const result = new Map<string, (Node | undefined)[] | 'any'>();
  const anyway = (name: string) => {
    if (name !== table.$name) result.set(name, 'any');
  };
  const rawWords = new Set<string>();
  walk(where, {
    subquery: (name, filter) => {
      if (name === table.$name) return false;
      const list = result.get(name);
      if (list !== 'any') result.set(name, [...(list ?? []), filter]);
      return true;
    },
    column: (owner, _name, inside) => {
      if (owner !== inside) anyway(owner);
    },
    tableRef: (name, inside) => {
      if (name !== inside) anyway(name);
    },
    ref: () => {},
    // Raw SQL may read any table: those it names are read some other way.
    word: (word) => {
      rawWords.add(word.toLowerCase());
    },
    star: () => {},
  });
  // A table named in raw SQL text may be read there: no filter for it.
  for (const name of result.keys()) if (rawWords.has(name.toLowerCase())) anyway(name);
  return result;
}
