import { Column } from '../schema/column.js';
import type { BinaryOperator, Node } from './nodes.js';
import { type Expr, type Placeholder, SQL, type SubquerySource, toNode, typeOf } from './sql.js';

/**
 * What may stand on the right of a comparison with an expression of type T. The comparisons take it as
 * `Operand<NoInfer<T>>`, so T comes from the left side alone: `eq(enumCol, 'typo')` does not widen T.
 */
export type Operand<T> = T | Expr<T> | Expr<T | null> | Placeholder | SQL<unknown>;

type Condition = SQL<boolean>;

/** A value compared with `against`, encoded by its type; an error about the value names the column. */
function operand(value: unknown, against: unknown): Node {
  const node = toNode(value, typeOf(against));
  return (node.kind === 'param' || node.kind === 'placeholder') && against instanceof Column
    ? { ...node, column: against }
    : node;
}

function binary(op: BinaryOperator, left: unknown, right: unknown): Condition {
  return new SQL({ kind: 'binary', op, left: operand(left, right), right: operand(right, left) });
}

/** `left = right`. @example eq(todos.id, id) */
export function eq<T>(left: Expr<T>, right: Operand<NoInfer<T>>): Condition {
  return binary('=', left, right);
}
/** `left <> right`. */
export function ne<T>(left: Expr<T>, right: Operand<NoInfer<T>>): Condition {
  return binary('<>', left, right);
}
/** `left > right`. */
export function gt<T>(left: Expr<T>, right: Operand<NoInfer<T>>): Condition {
  return binary('>', left, right);
}
/** `left >= right`. */
export function gte<T>(left: Expr<T>, right: Operand<NoInfer<T>>): Condition {
  return binary('>=', left, right);
}
/** `left < right`. */
export function lt<T>(left: Expr<T>, right: Operand<NoInfer<T>>): Condition {
  return binary('<', left, right);
}
/** `left <= right`. */
export function lte<T>(left: Expr<T>, right: Operand<NoInfer<T>>): Condition {
  return binary('<=', left, right);
}

/** Case-sensitive pattern match on both dialects (`%` any run, `_` one character). @example like(todos.title, 'Mi%') */
export function like(left: Expr<string | null>, pattern: Operand<string>): Condition {
  return binary('LIKE', left, pattern);
}
/** Negated `like`. */
export function notLike(left: Expr<string | null>, pattern: Operand<string>): Condition {
  return binary('NOT LIKE', left, pattern);
}
/** Case-insensitive pattern match: `ILIKE` on PostgreSQL, `lower() LIKE lower()` on SQLite. */
export function ilike(left: Expr<string | null>, pattern: Operand<string>): Condition {
  return new SQL({ kind: 'ilike', left: toNode(left), right: operand(pattern, left), negated: false });
}
/** Negated `ilike`. */
export function notIlike(left: Expr<string | null>, pattern: Operand<string>): Condition {
  return new SQL({ kind: 'ilike', left: toNode(left), right: operand(pattern, left), negated: true });
}

function inList(left: unknown, values: readonly unknown[] | SubquerySource, negated: boolean): Condition {
  const right = Array.isArray(values)
    ? values.map((v) => operand(v, left))
    : (toNode(values) as Extract<Node, { kind: 'subquery' }>);
  return new SQL({ kind: 'in', left: toNode(left), right, negated });
}

/**
 * `left IN (...)` with a list of values or a subquery. An empty list matches nothing.
 * @example inArray(todos.id, ids); inArray(todos.listId, db.select({ id: lists.id }).from(lists))
 */
export function inArray<T>(
  left: Expr<T>,
  values: readonly Operand<NoInfer<T>>[] | SubquerySource,
): Condition {
  return inList(left, values, false);
}
/** `left NOT IN (...)`. An empty list matches everything. */
export function notInArray<T>(
  left: Expr<T>,
  values: readonly Operand<NoInfer<T>>[] | SubquerySource,
): Condition {
  return inList(left, values, true);
}

/** `expr IS NULL`. */
export function isNull(expr: Expr<unknown>): Condition {
  return new SQL({ kind: 'isNull', expr: toNode(expr), negated: false });
}
/** `expr IS NOT NULL`. */
export function isNotNull(expr: Expr<unknown>): Condition {
  return new SQL({ kind: 'isNull', expr: toNode(expr), negated: true });
}

/** `expr BETWEEN low AND high` (inclusive). */
export function between<T>(expr: Expr<T>, low: Operand<NoInfer<T>>, high: Operand<NoInfer<T>>): Condition {
  return new SQL({
    kind: 'between',
    expr: toNode(expr),
    low: operand(low, expr),
    high: operand(high, expr),
    negated: false,
  });
}
/** `expr NOT BETWEEN low AND high`. */
export function notBetween<T>(expr: Expr<T>, low: Operand<NoInfer<T>>, high: Operand<NoInfer<T>>): Condition {
  return new SQL({
    kind: 'between',
    expr: toNode(expr),
    low: operand(low, expr),
    high: operand(high, expr),
    negated: true,
  });
}

/** `EXISTS (subquery)`. @example exists(db.select().from(todos).where(eq(todos.listId, lists.id))) */
export function exists(query: SubquerySource): Condition {
  return new SQL({
    kind: 'exists',
    query: toNode(query) as Extract<Node, { kind: 'subquery' }>,
    negated: false,
  });
}
/** `NOT EXISTS (subquery)`. */
export function notExists(query: SubquerySource): Condition {
  return new SQL({
    kind: 'exists',
    query: toNode(query) as Extract<Node, { kind: 'subquery' }>,
    negated: true,
  });
}

function logical(op: 'AND' | 'OR', conditions: (SQL<unknown> | undefined)[]): Condition | undefined {
  const items = conditions.filter((c): c is SQL<unknown> => c !== undefined).map((c) => c.node);
  if (items.length === 0) return undefined;
  if (items.length === 1) return new SQL(items[0]!);
  return new SQL({ kind: 'logical', op, items });
}

/** All conditions hold. Undefined conditions are skipped, so optional filters compose. */
export function and(...conditions: (SQL<unknown> | undefined)[]): Condition | undefined {
  return logical('AND', conditions);
}
/** At least one condition holds. Undefined conditions are skipped. */
export function or(...conditions: (SQL<unknown> | undefined)[]): Condition | undefined {
  return logical('OR', conditions);
}
/** The condition does not hold. */
export function not(condition: SQL<unknown>): Condition {
  return new SQL({ kind: 'not', item: condition.node });
}

/** In `onConflictDoUpdate({ set })`: the value the insert tried to write. @example set: { title: excluded(todos.title) } */
export function excluded<T>(column: Column<T, any, any, any>): SQL<T> {
  return new SQL<T>({ kind: 'excluded', column }, column.type);
}
