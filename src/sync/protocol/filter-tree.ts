import { z } from 'zod';
import { is } from '../../entity.js';
import { SyncProtocolError, UsageError } from '../../errors.js';
import type { Column } from '../../schema/column.js';
import type { TableBase } from '../../schema/table.js';
import {
  and,
  between,
  eq,
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
  notIlike,
  notInArray,
  notLike,
  or,
} from '../../sql/expressions.js';
import type { BinaryOperator, Node } from '../../sql/nodes.js';
import type { SQL } from '../../sql/sql.js';
import { formatIssues, formatPath, SyncMessageError, shown } from './messages-error.js';
import { JsonValueSchema, nestedDeeperThan } from './messages-json.js';
import { decodeValue, encodeValue, type JsonValue } from './value-codec.js';

type ComparisonOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte';
type LikeOp = 'like' | 'notLike' | 'ilike' | 'notIlike';

/**
 * A shape filter as it travels: the JSON form of a condition built with the expression builders.
 * Each node names its builder in `op`; leaves compare one column (by SQL name) with JSON values,
 * encoded per column type by the value codec (a timestamp as ms, a bigint as a decimal string).
 * There are no subqueries, functions, raw SQL or column-to-column comparisons: a filter is data,
 * never SQL text.
 *
 * @example
 *   const where: FilterJson = { op: 'and', args: [
 *     { op: 'eq', column: 'list_id', value: listId },
 *     { op: 'isNull', column: 'deleted_at' },
 *   ] };
 */
export type FilterJson =
  | { readonly op: ComparisonOp; readonly column: string; readonly value: JsonValue }
  | { readonly op: 'inArray' | 'notInArray'; readonly column: string; readonly values: readonly JsonValue[] }
  | { readonly op: 'isNull' | 'isNotNull'; readonly column: string }
  | {
      readonly op: 'between' | 'notBetween';
      readonly column: string;
      readonly low: JsonValue;
      readonly high: JsonValue;
    }
  | { readonly op: LikeOp; readonly column: string; readonly pattern: string }
  | { readonly op: 'and' | 'or'; readonly args: readonly FilterJson[] }
  | { readonly op: 'not'; readonly arg: FilterJson };

/**
 * Every `op` a filter tree may use, the names of the expression builders they stand for.
 *
 * @example
 *   FILTER_OPERATORS.includes('inArray'); // true
 */
export const FILTER_OPERATORS: readonly FilterJson['op'][] = [
  'eq',
  'ne',
  'gt',
  'gte',
  'lt',
  'lte',
  'inArray',
  'notInArray',
  'isNull',
  'isNotNull',
  'between',
  'notBetween',
  'like',
  'notLike',
  'ilike',
  'notIlike',
  'and',
  'or',
  'not',
];

const columnName = z.string().min(1, 'column names cannot be empty');

/**
 * Checks the structure of a filter tree (known operators, the fields each needs, no extra fields),
 * but not its column names: those need the table, which `filterFromJson` takes. Used inside the
 * `hello` message schema. Guard deep input with a nesting limit first: zod recurses.
 *
 * @example
 *   FilterSchema.safeParse({ op: 'eq', column: 'id', value: 1 }).success; // true
 */
export const FilterSchema: z.ZodType<FilterJson> = z.lazy(() =>
  z.discriminatedUnion('op', [
    z.strictObject({
      op: z.enum(['eq', 'ne', 'gt', 'gte', 'lt', 'lte']),
      column: columnName,
      value: JsonValueSchema,
    }),
    z.strictObject({
      op: z.enum(['inArray', 'notInArray']),
      column: columnName,
      values: z.array(JsonValueSchema),
    }),
    z.strictObject({ op: z.enum(['isNull', 'isNotNull']), column: columnName }),
    z.strictObject({
      op: z.enum(['between', 'notBetween']),
      column: columnName,
      low: JsonValueSchema,
      high: JsonValueSchema,
    }),
    z.strictObject({
      op: z.enum(['like', 'notLike', 'ilike', 'notIlike']),
      column: columnName,
      pattern: z.string(),
    }),
    z.strictObject({
      op: z.enum(['and', 'or']),
      args: z.array(FilterSchema).min(1, 'and/or need at least one condition'),
    }),
    z.strictObject({ op: z.literal('not'), arg: FilterSchema }),
  ]),
);

/**
 * How big a filter tree `filterFromJson` accepts; over either limit is a `too_large` error.
 *
 * @example
 *   filterFromJson(json, todos, { maxDepth: 8, maxNodes: 200 });
 */
export interface FilterLimits {
  /** Deepest nesting of and/or/not (a single comparison is depth 1). */
  readonly maxDepth: number;
  /** Most nodes, counting every comparison, every and/or/not, and every value of an `inArray` list. */
  readonly maxNodes: number;
}

/**
 * The limits `filterFromJson` uses when given none: 16 levels, 1,000 nodes. Generous for any
 * filter written by hand; small enough that checking and compiling it costs next to nothing.
 *
 * @example
 *   filterFromJson(json, todos, { ...DEFAULT_FILTER_LIMITS, maxNodes: 5000 });
 */
export const DEFAULT_FILTER_LIMITS: FilterLimits = { maxDepth: 16, maxNodes: 1000 };

const BINARY_OPS: Record<BinaryOperator, ComparisonOp | 'like' | 'notLike'> = {
  '=': 'eq',
  '<>': 'ne',
  '>': 'gt',
  '>=': 'gte',
  '<': 'lt',
  '<=': 'lte',
  LIKE: 'like',
  'NOT LIKE': 'notLike',
};

/** What a node is, in words, for an error saying it cannot be sent. */
function describeNode(node: Node): string {
  switch (node.kind) {
    case 'raw':
      return 'raw SQL (sql`...`)';
    case 'func':
      return `a function call (${node.name}())`;
    case 'subquery':
      return 'a subquery';
    case 'exists':
      return 'EXISTS (subquery)';
    case 'placeholder':
      return `the placeholder "${node.name}" (pass the value itself)`;
    case 'column':
      return `the column ${node.table.$name}.${node.name} on its own`;
    case 'param':
      return 'a bare value';
    default:
      return `a "${node.kind}" expression`;
  }
}

function notExpressible(what: string): UsageError {
  return new UsageError(
    `filterToJson: ${what} cannot be sent as a shape filter; a shape filter compares columns of its table with values, using eq, ne, gt, gte, lt, lte, inArray, notInArray, isNull, isNotNull, between, notBetween, like, notLike, ilike, notIlike, and, or, not (put anything else in the server's read rules)`,
  );
}

/**
 * Turns a condition built with the expression builders into a `FilterJson` tree, ready to travel
 * in a `hello` message. Every column must belong to one table (`table`, when given); values are
 * encoded for their column's type. Anything a filter cannot say (a subquery, `sql` text, a
 * function, a placeholder, a comparison of two columns) throws a `UsageError` naming it.
 *
 * @example
 *   filterToJson(and(eq(todos.listId, listId), eq(todos.done, false))!, todos);
 *   // { op: 'and', args: [{ op: 'eq', column: 'list_id', value: '…' }, { op: 'eq', column: 'done', value: false }] }
 */
export function filterToJson(condition: SQL<unknown>, table?: TableBase): FilterJson {
  let tableName = table?.$name;

  const columnOf = (node: Node): Column<any, any, any, any> => {
    if (node.kind !== 'column') throw notExpressible(`${describeNode(node)} in place of a column`);
    if (tableName === undefined) tableName = node.table.$name;
    else if (node.table.$name !== tableName) {
      throw new UsageError(
        `filterToJson: the filter uses ${node.table.$name}.${node.name}, but a shape filter can only use columns of its own table "${tableName}"`,
      );
    }
    return node;
  };

  const encodedOperand = (node: Node, column: Column<any, any, any, any>): JsonValue => {
    if (node.kind === 'column') {
      throw notExpressible(
        `comparing two columns (${column.table.$name}.${column.name} with ${node.table.$name}.${node.name})`,
      );
    }
    if (node.kind !== 'param') throw notExpressible(describeNode(node));
    try {
      return encodeValue(column.type, node.value === undefined ? null : node.value);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new UsageError(`filterToJson: the value for ${column.table.$name}.${column.name}: ${reason}`, {
        cause,
      });
    }
  };

  // A pattern is not a value of the column (`'Mi%'` is no enum member), so it skips the codec.
  const patternOf = (node: Node, column: Column<any, any, any, any>): string => {
    if (node.kind === 'param' && typeof node.value === 'string') return node.value;
    if (node.kind === 'param') {
      throw new UsageError(
        `filterToJson: the pattern for ${column.table.$name}.${column.name} must be a string`,
      );
    }
    throw notExpressible(`${describeNode(node)} as a pattern`);
  };

  const walk = (node: Node): FilterJson => {
    switch (node.kind) {
      case 'binary': {
        const op = BINARY_OPS[node.op];
        const column = columnOf(node.left);
        if (op === 'like' || op === 'notLike')
          return { op, column: column.name, pattern: patternOf(node.right, column) };
        return { op, column: column.name, value: encodedOperand(node.right, column) };
      }
      case 'ilike': {
        const column = columnOf(node.left);
        return {
          op: node.negated ? 'notIlike' : 'ilike',
          column: column.name,
          pattern: patternOf(node.right, column),
        };
      }
      case 'in': {
        const column = columnOf(node.left);
        if (!Array.isArray(node.right)) throw notExpressible('inArray with a subquery');
        return {
          op: node.negated ? 'notInArray' : 'inArray',
          column: column.name,
          values: (node.right as readonly Node[]).map((item) => encodedOperand(item, column)),
        };
      }
      case 'between': {
        const column = columnOf(node.expr);
        return {
          op: node.negated ? 'notBetween' : 'between',
          column: column.name,
          low: encodedOperand(node.low, column),
          high: encodedOperand(node.high, column),
        };
      }
      case 'isNull':
        return { op: node.negated ? 'isNotNull' : 'isNull', column: columnOf(node.expr).name };
      case 'logical':
        return { op: node.op === 'AND' ? 'and' : 'or', args: node.items.map(walk) };
      case 'not':
        return { op: 'not', arg: walk(node.item) };
      default:
        throw notExpressible(describeNode(node));
    }
  };

  return walk(condition.node);
}

/** Which operators a column type can take in a shape filter. */
function checkOperator(
  op: FilterJson['op'],
  column: Column<any, any, any, any>,
  table: TableBase,
  path: string,
) {
  const kind = column.type.kind;
  const refuse = (why: string) =>
    new SyncMessageError('invalid_filter', `${path}: ${op} on ${table.$name}.${column.name}: ${why}`, {
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

/**
 * Checks a filter tree that came over the wire against `table` and rebuilds it as a condition
 * with the real expression builders, so the server can AND it with its read rules and compile it
 * for either dialect. Throws `SyncMessageError` (a `SyncProtocolError`) with code
 * `invalid_filter` (wrong structure, unknown operator, an operator the column's type cannot
 * take, a value of the wrong type), `unknown_column` (naming the table and the column) or
 * `too_large` (over `limits`). `path` is put before the places named in errors (`shapes[0].where`).
 *
 * @example
 *   const where = filterFromJson(shape.where, todos, DEFAULT_FILTER_LIMITS, 'shapes[0].where');
 *   db.select().from(todos).where(and(where, readRule(user)));
 */
export function filterFromJson(
  json: unknown,
  table: TableBase,
  limits: Partial<FilterLimits> = {},
  path = 'where',
): SQL<boolean> {
  const { maxDepth, maxNodes } = { ...DEFAULT_FILTER_LIMITS, ...limits };
  // Each level of the tree is an object inside an array; a leaf's values add two more at most.
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
        `${path}: the filter has more than ${maxNodes} nodes (the maxNodes limit, counting every condition and every inArray value)`,
        { path },
      );
    }
  };

  const columnAt = (name: string, at: string): Column<any, any, any, any> => {
    const column = table.$columnBySqlName(name);
    if (column) return column;
    const known = table.$columnList.map((c) => c.name);
    throw new SyncMessageError(
      'unknown_column',
      `${at}: table "${table.$name}" has no column ${shown(name)}; its columns are ${known.join(', ')} (filters name columns by their SQL name)`,
      { path: at },
    );
  };

  const valueAt = (column: Column<any, any, any, any>, value: JsonValue, at: string): unknown => {
    try {
      return decodeValue(column.type, value);
    } catch (cause) {
      if (!is(cause, SyncProtocolError)) throw cause;
      throw new SyncMessageError('invalid_filter', `${at}: ${cause.message}`, { path: at, cause });
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
    }
    const column = columnAt(node.column, `${at}.column`);
    checkOperator(node.op, column, table, at);
    switch (node.op) {
      case 'isNull':
        return isNull(column);
      case 'isNotNull':
        return isNotNull(column);
      case 'inArray':
      case 'notInArray': {
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
      default:
        return COMPARE[node.op](column, valueAt(column, node.value, `${at}.value`));
    }
  };

  return build(parsed.data, path, 1);
}

const COMPARE: Record<ComparisonOp, (column: Column<any, any, any, any>, value: unknown) => SQL<boolean>> = {
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
    `${path}: the filter nests and/or/not deeper than ${maxDepth} levels (the maxDepth limit)`,
    { path },
  );
}
