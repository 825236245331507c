import { entityKind, is } from '../entity.js';
import { UsageError } from '../errors.js';
import { Column } from '../schema/column.js';
import type { ColumnType } from '../schema/column-type.js';
import { TableBase } from '../schema/table.js';
import type { Decoder, Node, SubqueryNode } from './nodes.js';

/** Objects that stand for a subquery (select builders) expose their node under this symbol. */
export const toSubqueryNode: unique symbol = Symbol.for('syncline:toSubqueryNode');

export interface SubquerySource {
  [toSubqueryNode](): SubqueryNode;
}

/**
 * A typed SQL expression: the result of `sql`…``, `fn()`, `count()` and the comparison builders.
 * `T` is the TypeScript type of its value; `mapWith()` sets how values are decoded.
 *
 * @example
 *   const lower = sql<string>`lower(${todos.title})`;
 *   const n = sql`count(*)`.mapWith(Number);
 */
export class SQL<T = unknown> {
  static readonly [entityKind]: string = 'SQL';
  declare readonly _: { type: T };
  readonly node: Node;
  readonly decoder: Decoder | undefined;

  constructor(node: Node, decoder?: Decoder) {
    this.node = node;
    this.decoder = decoder;
  }

  /**
   * Decode this expression's values like a column (`mapWith(todos.updatedAt)`), like a column type,
   * or with a function (`mapWith(Number)`).
   */
  mapWith<U>(decoder: Column<U, any, any, any> | ((value: any) => U)): SQL<U> {
    return new SQL<U>(this.node, is(decoder, Column) ? decoder.type : (decoder as (value: unknown) => U));
  }
}

/** A named value supplied when a prepared query runs. @example sql.placeholder('id') */
export class Placeholder<TName extends string = string> {
  static readonly [entityKind]: string = 'Placeholder';
  /** Type-only brand: without it anything with a `name` (a column) would pass for a placeholder. */
  declare readonly _: { readonly placeholder: TName };
  constructor(readonly name: TName) {}
}

/** Anything that yields a value of type T in SQL: a column or a SQL expression. */
export type Expr<T = unknown> = Column<T, any, any, any> | SQL<T>;

/** The TypeScript type an expression yields. */
export type ExprType<E> =
  E extends Column<infer D, infer N, any, any>
    ? N extends true
      ? D
      : D | null
    : E extends SQL<infer T>
      ? T
      : never;

/** The column type to encode values compared with this expression, when it has one. */
export function typeOf(value: unknown): ColumnType | undefined {
  if (value instanceof Column) return value.type;
  if (value instanceof SQL && value.decoder && typeof value.decoder === 'object') return value.decoder;
  return undefined;
}

/**
 * Turns anything a builder accepts into a node: columns, SQL, tables, subqueries, placeholders,
 * and plain values (bound as parameters, encoded with `type` when given).
 */
export function toNode(value: unknown, type?: ColumnType): Node {
  if (value instanceof Column || (value !== null && typeof value === 'object' && is(value, Column))) {
    return value as Column<any, any, any, any>;
  }
  if (value instanceof SQL || is(value, SQL)) return (value as SQL).node;
  if (value !== null && typeof value === 'object') {
    if (is(value, TableBase)) return { kind: 'tableRef', table: value };
    if (typeof (value as Partial<SubquerySource>)[toSubqueryNode] === 'function') {
      return (value as SubquerySource)[toSubqueryNode]();
    }
    if (is(value, Placeholder)) return { kind: 'placeholder', name: value.name, type };
  }
  return { kind: 'param', value, type };
}

export interface SqlTag {
  <T = unknown>(strings: TemplateStringsArray, ...values: unknown[]): SQL<T>;
  /** A value supplied when a prepared query runs. */
  placeholder<TName extends string>(name: TName): Placeholder<TName>;
  /** A quoted identifier (a table or column name chosen at run time): the only way to put a name in SQL. */
  identifier(...names: string[]): SQL<unknown>;
  /** SQL text put in as is. Never pass user input: it is not escaped. */
  raw(text: string): SQL<unknown>;
  /** Joins SQL pieces with a separator (`, ` by default). */
  join(items: unknown[], separator?: SQL<unknown> | string): SQL<unknown>;
  /** Nothing: an empty piece of SQL, handy in conditional templates. */
  empty(): SQL<unknown>;
}

function template<T>(strings: TemplateStringsArray, ...values: unknown[]): SQL<T> {
  const chunks: (string | Node)[] = [];
  for (let i = 0; i < strings.length; i++) {
    if (strings[i]) chunks.push(strings[i]!);
    if (i < values.length) chunks.push(toNode(values[i]));
  }
  return new SQL<T>({ kind: 'raw', chunks });
}

/**
 * Tagged template for SQL the builder does not cover. Interpolated values become parameters,
 * columns and tables become quoted names, and queries become subqueries; text is never spliced in.
 *
 * @example
 *   await db.execute(sql`select count(*) as n from ${todos} where ${todos.done} = ${true}`);
 */
export const sql: SqlTag = Object.assign(template, {
  placeholder<TName extends string>(name: TName): Placeholder<TName> {
    if (!name) throw new UsageError('sql.placeholder() needs a name');
    return new Placeholder(name);
  },
  identifier(...names: string[]): SQL<unknown> {
    if (names.length === 0 || names.some((n) => typeof n !== 'string' || n.length === 0)) {
      throw new UsageError('sql.identifier() needs one or more non-empty names');
    }
    return new SQL({ kind: 'identifier', names });
  },
  raw(text: string): SQL<unknown> {
    return new SQL({ kind: 'raw', chunks: [text] });
  },
  join(items: unknown[], separator: SQL<unknown> | string = ', '): SQL<unknown> {
    const chunks: (string | Node)[] = [];
    items.forEach((item, i) => {
      if (i > 0) chunks.push(typeof separator === 'string' ? separator : separator.node);
      chunks.push(toNode(item));
    });
    return new SQL({ kind: 'raw', chunks });
  },
  empty(): SQL<unknown> {
    return new SQL({ kind: 'raw', chunks: [] });
  },
});
