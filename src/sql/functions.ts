import type { Column } from '../schema/column.js';
import type { Node, OrderNode } from './nodes.js';
import { type Expr, SQL, toNode, typeOf } from './sql.js';

function toNumber(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

/**
 * Calls any SQL function by name; its arguments are columns, expressions or parameters.
 * @example fn<string>('upper', todos.title); fn<number>('length', todos.title).mapWith(Number)
 */
export function fn<T = unknown>(name: string, ...args: unknown[]): SQL<T> {
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) {
    throw new TypeError(`fn(): "${name}" is not a valid SQL function name`);
  }
  return new SQL<T>({ kind: 'func', name, args: args.map((a) => toNode(a)), distinct: false });
}

/** `count(*)`, or `count(expr)` to count non-null values. Always a number. */
export function count(expr?: Expr<unknown>): SQL<number> {
  const args: Node[] = expr === undefined ? [{ kind: 'star' }] : [toNode(expr)];
  return new SQL<number>({ kind: 'func', name: 'count', args, distinct: false }, toNumber);
}

/** `count(DISTINCT expr)`. */
export function countDistinct(expr: Expr<unknown>): SQL<number> {
  return new SQL<number>({ kind: 'func', name: 'count', args: [toNode(expr)], distinct: true }, toNumber);
}

/** `sum(expr)` as a number, null over no rows. */
export function sum(expr: Expr<number | bigint | string | null>): SQL<number | null> {
  return new SQL({ kind: 'func', name: 'sum', args: [toNode(expr)], distinct: false }, toNumber);
}

/** `avg(expr)` as a number, null over no rows. */
export function avg(expr: Expr<number | bigint | string | null>): SQL<number | null> {
  return new SQL({ kind: 'func', name: 'avg', args: [toNode(expr)], distinct: false }, toNumber);
}

/** `min(expr)`, decoded like the expression (a Date stays a Date); null over no rows. */
export function min<T>(expr: Expr<T>): SQL<NonNullable<T> | null> {
  return new SQL({ kind: 'func', name: 'min', args: [toNode(expr)], distinct: false }, typeOf(expr));
}

/** `max(expr)`, decoded like the expression; null over no rows. */
export function max<T>(expr: Expr<T>): SQL<NonNullable<T> | null> {
  return new SQL({ kind: 'func', name: 'max', args: [toNode(expr)], distinct: false }, typeOf(expr));
}

/** An ORDER BY term. `nullsFirst()` / `nullsLast()` give the same order on both dialects. */
export class OrderBy {
  constructor(readonly node: OrderNode) {}
  nullsFirst(): OrderBy {
    return new OrderBy({ ...this.node, nulls: 'FIRST' });
  }
  nullsLast(): OrderBy {
    return new OrderBy({ ...this.node, nulls: 'LAST' });
  }
}

/** Ascending order. @example orderBy(asc(todos.title).nullsLast()) */
export function asc(expr: Expr<unknown> | Column<any, any, any, any>): OrderBy {
  return new OrderBy({ expr: toNode(expr), direction: 'ASC', nulls: undefined });
}

/** Descending order. @example orderBy(desc(todos.updatedAt)) */
export function desc(expr: Expr<unknown> | Column<any, any, any, any>): OrderBy {
  return new OrderBy({ expr: toNode(expr), direction: 'DESC', nulls: undefined });
}
