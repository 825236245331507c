import { z } from 'zod';
import type { Schema } from '../../schema/schema.js';
import type { TableBase } from '../../schema/table.js';
import type { SQL } from '../../sql/sql.js';
import { JsonValueSchema } from './messages-json.js';
import type { JsonValue } from './value-codec.js';

type ComparisonOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte';
type LikeOp = 'like' | 'notLike' | 'ilike' | 'notIlike';

/**
 * A subquery in a filter tree: the rows of `table` (a synced table, by SQL name) that `where`
 * admits, a filter tree on that table's columns; `column` is the column it selects, for
 * `inArray`. It reads no table its enclosing filters read, so each table of a filter names one
 * row: the outer table's columns are reachable inside it as `outer` operands.
 *
 * @example
 *   const mine: SubqueryJson = { table: 'members', column: 'list_id', where: { op: 'eq', column: 'user_id', value: 'alice' } };
 */
export interface SubqueryJson {
  readonly table: string;
  readonly column?: string;
  readonly where?: FilterJson;
}

/**
 * A column of a table around a subquery (the shape's table, or an enclosing subquery's), as the
 * right side of a comparison inside it: what makes a subquery correlated.
 *
 * @example
 *   const sameList: FilterJson = { op: 'eq', column: 'list_id', outer: { table: 'todos', column: 'list_id' } };
 */
export interface OuterColumnJson {
  readonly table: string;
  readonly column: string;
}

/**
 * A shape filter as it travels: the JSON form of a condition built with the expression builders.
 * Each node names its builder in `op`; leaves compare one column (by SQL name) with JSON values,
 * encoded per column type by the value codec (a timestamp as ms, a bigint as a decimal string).
 * `inArray`/`notInArray` take a `subquery` instead of `values`, `exists`/`notExists` a subquery
 * alone, and inside a subquery a comparison may take an `outer` column instead of a `value`.
 * There are no functions, raw SQL or other column-to-column comparisons: a filter is data, never
 * SQL text.
 *
 * @example
 *   const where: FilterJson = { op: 'and', args: [
 *     { op: 'eq', column: 'list_id', value: listId },
 *     { op: 'exists', subquery: { table: 'members', where: { op: 'eq', column: 'list_id', outer: { table: 'todos', column: 'list_id' } } } },
 *   ] };
 */
export type FilterJson =
  | { readonly op: ComparisonOp; readonly column: string; readonly value: JsonValue }
  | { readonly op: ComparisonOp; readonly column: string; readonly outer: OuterColumnJson }
  | { readonly op: 'inArray' | 'notInArray'; readonly column: string; readonly values: readonly JsonValue[] }
  | { readonly op: 'inArray' | 'notInArray'; readonly column: string; readonly subquery: SubqueryJson }
  | { readonly op: 'exists' | 'notExists'; readonly subquery: SubqueryJson }
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
  'exists',
  'notExists',
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
const tableName = z.string().min(1, 'table names cannot be empty');

const OuterColumnSchema = z.strictObject({ table: tableName, column: columnName });

/** One of two fields, never both: `first` is named as missing when neither is there. */
function oneOf(first: string, second: string, missing: string) {
  return (node: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const has = (key: string) => node[key] !== undefined;
    if (!has(first) && !has(second)) ctx.addIssue({ code: 'custom', path: [first], message: missing });
    else if (has(first) && has(second)) {
      ctx.addIssue({ code: 'custom', path: [second], message: `give ${first} or ${second}, not both` });
    }
  };
}

/**
 * Checks the structure of a filter tree (known operators, the fields each needs, no extra fields),
 * but not its table and column names: those need the schema, which `filterFromJson` takes. Used
 * inside the `hello` and `subscribe` message schemas. Guard deep input with a nesting limit
 * first: zod recurses.
 *
 * @example
 *   FilterSchema.safeParse({ op: 'eq', column: 'id', value: 1 }).success; // true
 */
export const FilterSchema: z.ZodType<FilterJson> = z.lazy(
  () =>
    z.discriminatedUnion('op', [
      z
        .strictObject({
          op: z.enum(['eq', 'ne', 'gt', 'gte', 'lt', 'lte']),
          column: columnName,
          value: JsonValueSchema.optional(),
          outer: OuterColumnSchema.optional(),
        })
        .superRefine(oneOf('value', 'outer', 'missing (expected a JSON value)')),
      z
        .strictObject({
          op: z.enum(['inArray', 'notInArray']),
          column: columnName,
          values: z.array(JsonValueSchema).optional(),
          subquery: z
            .strictObject({ table: tableName, column: columnName, where: FilterSchema.optional() })
            .optional(),
        })
        .superRefine(oneOf('values', 'subquery', 'missing (expected an array, or a subquery)')),
      z.strictObject({
        op: z.enum(['exists', 'notExists']),
        subquery: z.strictObject({ table: tableName, where: FilterSchema.optional() }),
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
    ]) as unknown as z.ZodType<FilterJson>,
);

/**
 * How big a filter tree `filterFromJson` accepts; over any limit is a `too_large` error.
 *
 * @example
 *   filterFromJson(json, todos, { maxDepth: 8, maxNodes: 200, maxSubqueryDepth: 1 });
 */
export interface FilterLimits {
  /** Deepest nesting of and/or/not and subqueries (a single comparison is depth 1). */
  readonly maxDepth: number;
  /**
   * Most nodes, counting every comparison, every and/or/not, every subquery and the conditions
   * inside it, and every value of an `inArray` list.
   */
  readonly maxNodes: number;
  /** Most subqueries inside one another (1: a subquery, but none inside it). */
  readonly maxSubqueryDepth: number;
}

/**
 * The limits `filterFromJson` uses when given none: 16 levels, 1,000 nodes, subqueries 3 deep.
 * Generous for any filter written by hand; small enough that checking and compiling it costs next
 * to nothing, and that PostgreSQL is never asked to plan a query nested without end.
 *
 * @example
 *   filterFromJson(json, todos, { ...DEFAULT_FILTER_LIMITS, maxNodes: 5000 });
 */
export const DEFAULT_FILTER_LIMITS: FilterLimits = { maxDepth: 16, maxNodes: 1000, maxSubqueryDepth: 3 };

/**
 * What a subquery may read, for `filterFromJson`: the schema its tables come from (synced tables
 * only), and on the server the read rule of each table for the connection's user, ANDed into
 * every subquery on that table, so a subquery sees only the rows the user may read (`'none'`:
 * the user may read no row of it, and a subquery on it is refused as `forbidden`).
 *
 * @example
 *   const scope: FilterScope = { schema: appSchema, readRule: (table) => rules.readFilter(table, user) };
 */
export interface FilterScope {
  readonly schema: Schema;
  readonly readRule?: (table: TableBase) => SQL<unknown> | undefined | 'none';
}
