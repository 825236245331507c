import { is } from '../../entity.js';
import { SyncProtocolError } from '../../errors.js';
import type { Column } from '../../schema/column.js';
import type { ColumnType } from '../../schema/column-type.js';
import type { TableBase } from '../../schema/table.js';
import {
  and,
  between,
  eq,
  exists,
  gt,
  gte,
  ilike,
  inArray,
  isNotNull,
  isNull,
  like,
  lt,
  lte,
  ne,
  not,
  notBetween,
  notExists,
  notIlike,
  notInArray,
  notLike,
  or,
} from '../../sql/expressions.js';
import type { SubqueryNode } from '../../sql/nodes.js';
import { type SQL, type SubquerySource, toSubqueryNode } from '../../sql/sql.js';
import {
  DEFAULT_FILTER_LIMITS,
  type FilterJson,
  type FilterLimits,
  FilterSchema,
  type FilterScope,
  type OuterColumnJson,
  type SubqueryJson,
} from './filter-tree.js';
import { formatIssues, formatPath, SyncMessageError, shown } from './messages-error.js';
import { nestedDeeperThan } from './messages-json.js';
import { syncedTableAt } from './synced-table.js';
import { decodeValue, type JsonValue } from './value-codec.js';

type AnyColumn = Column<any, any, any, any>;
type ComparisonOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte';

/** Which operators a column type can take in a shape filter. */
function checkOperator(op: FilterJson['op'], column: AnyColumn, path: string) {
  const kind = column.type.kind;
  const refuse = (why: string) =>
    new SyncMessageError('invalid_filter', `${path}: ${op} on ${column.table.$name}.${column.name}: ${why}`, {
      path,
    });
  if (op === 'isNull' || op === 'isNotNull') return;
  if (kind === 'json') throw refuse('json columns can only be tested with isNull or isNotNull');
  const isLike = op === 'like' || op === 'notLike' || op === 'ilike' || op === 'notIlike';
  if (isLike && kind !== 'text')
    throw refuse(`pattern matching needs a text column, and this one is ${kind}`);
  const ordered =
    op === 'gt' || op === 'gte' || op === 'lt' || op === 'lte' || op === 'between' || op === 'notBetween';
  if (ordered && kind === 'blob') throw refuse('blob columns cannot be ordered; use eq, ne or inArray');
}

/** The type two columns are compared as: an enum is text on both dialects; a custom type is its name. */
function comparedAs(type: ColumnType): string {
  if (type.kind === 'enum') return 'text';
  return type.kind === 'custom' ? `custom type ${type.custom?.name}` : type.kind;
}

/** Two columns a filter compares (a correlation, inArray's subquery) must be of one type. */
function checkComparable(a: AnyColumn, b: AnyColumn, op: string, path: string): void {
  if (comparedAs(a.type) === comparedAs(b.type)) return;
  throw new SyncMessageError(
    'invalid_filter',
    `${path}: ${op} compares ${a.table.$name}.${a.name} (${comparedAs(a.type)}) with ${b.table.$name}.${b.name} (${comparedAs(b.type)}); compare columns of the same type`,
    { path },
  );
}

/**
 * `SELECT column FROM table WHERE where` as a subquery (`SELECT 1` without a column, for EXISTS),
 * built as the select builder builds it, with no database: the filter tree is shared by client
 * and server.
 */
function subqueryOf(table: TableBase, column: AnyColumn | undefined, where: SQL<unknown> | undefined) {
  const node: SubqueryNode = {
    kind: 'subquery',
    alias: undefined,
    query: {
      kind: 'select',
      fields: [
        {
          key: column?.name ?? 'one',
          path: [column?.name ?? 'one'],
          expr: column ?? { kind: 'raw', chunks: ['1'] },
          decoder: undefined,
          nullableGroup: undefined,
        },
      ],
      distinct: false,
      from: { kind: 'tableRef', table },
      joins: [],
      where: where?.node,
      groupBy: [],
      having: undefined,
      orderBy: [],
      limit: undefined,
      offset: undefined,
    },
  };
  const source: SubquerySource = { [toSubqueryNode]: () => node };
  return source;
}

/**
 * Checks a filter tree that came over the wire against `table` and rebuilds it as a condition
 * with the real expression builders, so the server can AND it with its read rules and compile it
 * for either dialect (and a client can run it on SQLite). A subquery's table comes from
 * `scope.schema` (a synced table, not one a filter around it reads already), and
 * `scope.readRule`'s condition for it is ANDed into the subquery's WHERE, so it sees only rows
 * the user may read. Throws `SyncMessageError` (a `SyncProtocolError`) with code
 * `invalid_filter` (wrong structure, unknown operator, an operator the column's type cannot
 * take, a value of the wrong type, columns of different types compared), `unknown_column`
 * (naming the table and the column), `unknown_table` (a subquery's), `forbidden` (a subquery on a
 * table the user may not read) or `too_large` (over `limits`). `path` is put before the places
 * named in errors (`shapes[0].where`).
 *
 * @example
 *   const where = filterFromJson(shape.where, todos, DEFAULT_FILTER_LIMITS, 'shapes[0].where', { schema: appSchema });
 *   db.select().from(todos).where(and(where, readRule(user)));
 */
export function filterFromJson(
  json: unknown,
  table: TableBase,
  limits: Partial<FilterLimits> = {},
  path = 'where',
  scope?: FilterScope,
): SQL<boolean> {
  const { maxDepth, maxNodes, maxSubqueryDepth } = { ...DEFAULT_FILTER_LIMITS, ...limits };
  // Each level of the tree is an object inside an array (or a subquery's where inside its
  // subquery); a leaf's values (or outer column) add two more at most.
  if (nestedDeeperThan(json, 2 * maxDepth + 2)) throw tooDeep(maxDepth, path);
  const parsed = FilterSchema.safeParse(json);
  if (!parsed.success) {
    throw new SyncMessageError(
      'invalid_filter',
      `invalid filter: ${formatIssues(parsed.error.issues, path)}`,
      {
        path: formatPath(parsed.error.issues[0]?.path ?? [], path),
      },
    );
  }

  let nodes = 0;
  const count = (n: number) => {
    nodes += n;
    if (nodes > maxNodes) {
      throw new SyncMessageError(
        'too_large',
        `${path}: the filter has more than ${maxNodes} nodes (the maxNodes limit, counting every condition, every subquery and every inArray value)`,
        { path },
      );
    }
  };

  // The shape's table, then the table of each subquery the build is in: the columns of the
  // innermost are tested, those of the others may be compared with them (`outer`).
  const tables: TableBase[] = [table];

  const columnAt = (name: string, at: string, of = tables[tables.length - 1]!): AnyColumn => {
    const column = of.$columnBySqlName(name);
    if (column) return column;
    const known = of.$columnList.map((c) => c.name);
    throw new SyncMessageError(
      'unknown_column',
      `${at}: table "${of.$name}" has no column ${shown(name)}; its columns are ${known.join(', ')} (filters name columns by their SQL name)`,
      { path: at },
    );
  };

  const outerAt = (outer: OuterColumnJson, at: string): AnyColumn => {
    const around = tables.slice(0, -1);
    const of = around.find((t) => t.$name === outer.table);
    if (!of) {
      const why =
        around.length === 0
          ? 'outer columns can only be used inside a subquery'
          : `the tables around this subquery are ${around.map((t) => `"${t.$name}"`).join(', ')}`;
      throw new SyncMessageError(
        'invalid_filter',
        `${at}.table: ${shown(outer.table)} is not a table around this condition; ${why}`,
        { path: `${at}.table` },
      );
    }
    return columnAt(outer.column, `${at}.column`, of);
  };

  const valueAt = (column: AnyColumn, value: JsonValue, at: string): unknown => {
    try {
      return decodeValue(column.type, value);
    } catch (cause) {
      if (!is(cause, SyncProtocolError)) throw cause;
      throw new SyncMessageError('invalid_filter', `${at}: ${cause.message}`, { path: at, cause });
    }
  };

  /** A subquery, checked against the schema and the read rules, with its column (for inArray). */
  const subquery = (
    node: SubqueryJson,
    at: string,
    depth: number,
    selects: boolean,
  ): { source: SubquerySource; column: AnyColumn | undefined } => {
    count(1);
    if (!scope) {
      throw new SyncMessageError('invalid_filter', `${at}: this side cannot check subqueries`, { path: at });
    }
    if (tables.length > maxSubqueryDepth) {
      throw new SyncMessageError(
        'too_large',
        `${at}: the filter nests subqueries deeper than ${maxSubqueryDepth} (the maxSubqueryDepth limit)`,
        { path: at },
      );
    }
    const read = syncedTableAt(scope.schema, node.table, `${at}.table`);
    if (tables.some((t) => t.$name === read.$name)) {
      throw new SyncMessageError(
        'invalid_filter',
        `${at}.table: the subquery reads "${read.$name}", which the filter around it reads already; a subquery must read another table`,
        { path: `${at}.table` },
      );
    }
    const rule = scope.readRule?.(read);
    if (rule === 'none') {
      throw new SyncMessageError(
        'forbidden',
        `${at}.table: the read rules do not let this user read table "${read.$name}", so a filter cannot read it either`,
        { path: `${at}.table` },
      );
    }
    tables.push(read);
    try {
      const column = selects ? columnAt(node.column!, `${at}.column`) : undefined;
      const where = node.where === undefined ? undefined : build(node.where, `${at}.where`, depth + 1);
      return { source: subqueryOf(read, column, and(where, rule)), column };
    } finally {
      tables.pop();
    }
  };

  const build = (node: FilterJson, at: string, depth: number): SQL<boolean> => {
    if (depth > maxDepth) throw tooDeep(maxDepth, path);
    count(1);
    switch (node.op) {
      case 'and':
      case 'or': {
        const args = node.args.map((arg, i) => build(arg, `${at}.args[${i}]`, depth + 1));
        return (node.op === 'and' ? and : or)(...args)!;
      }
      case 'not':
        return not(build(node.arg, `${at}.arg`, depth + 1));
      case 'exists':
      case 'notExists': {
        const { source } = subquery(node.subquery, `${at}.subquery`, depth, false);
        return node.op === 'exists' ? exists(source) : notExists(source);
      }
    }
    const column = columnAt(node.column, `${at}.column`);
    checkOperator(node.op, column, at);
    switch (node.op) {
      case 'isNull':
        return isNull(column);
      case 'isNotNull':
        return isNotNull(column);
      case 'inArray':
      case 'notInArray': {
        if ('subquery' in node) {
          const sub = subquery(node.subquery, `${at}.subquery`, depth, true);
          checkComparable(column, sub.column!, node.op, at);
          return node.op === 'inArray' ? inArray(column, sub.source) : notInArray(column, sub.source);
        }
        count(node.values.length);
        const values = node.values.map((v, i) => valueAt(column, v, `${at}.values[${i}]`));
        return node.op === 'inArray' ? inArray(column, values) : notInArray(column, values);
      }
      case 'between':
      case 'notBetween': {
        const low = valueAt(column, node.low, `${at}.low`);
        const high = valueAt(column, node.high, `${at}.high`);
        return node.op === 'between' ? between(column, low, high) : notBetween(column, low, high);
      }
      case 'like':
        return like(column, node.pattern);
      case 'notLike':
        return notLike(column, node.pattern);
      case 'ilike':
        return ilike(column, node.pattern);
      case 'notIlike':
        return notIlike(column, node.pattern);
      default: {
        if ('outer' in node) {
          const outer = outerAt(node.outer, `${at}.outer`);
          checkComparable(column, outer, node.op, at);
          return COMPARE[node.op](column, outer);
        }
        return COMPARE[node.op](column, valueAt(column, node.value, `${at}.value`));
      }
    }
  };

  return build(parsed.data, path, 1);
}

const COMPARE: Record<ComparisonOp, (column: AnyColumn, value: unknown) => SQL<boolean>> = {
  eq,
  ne,
  gt,
  gte,
  lt,
  lte,
};

function tooDeep(maxDepth: number, path: string): SyncMessageError {
  return new SyncMessageError(
    'too_large',
    `${path}: the filter nests and/or/not deeper than ${maxDepth} levels (the maxDepth limit); a subquery counts as a level`,
    { path },
  );
}
