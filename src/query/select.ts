import { entityKind, is } from '../entity.js';
import { UsageError } from '../errors.js';
import { LiveQuery } from '../live/live-query.js';
import type { RowFilter } from '../live/live-source.js';
import { compileRowPredicate } from '../live/row-predicate.js';
import type { Simplify } from '../schema/inference.js';
import { type AnyTable, TableBase } from '../schema/table.js';
import { OrderBy } from '../sql/functions.js';
import type {
  CompoundNode,
  JoinNode,
  Node,
  OrderNode,
  SelectField,
  SelectNode,
  SubqueryNode,
} from '../sql/nodes.js';
import { type Placeholder, SQL, type SubquerySource, toNode, toSubqueryNode } from '../sql/sql.js';
import type { QueryRunner } from './executor.js';
import { QueryBase } from './query-base.js';
import { runCompiledAsync } from './run-compiled.js';
import {
  partialFields,
  type RowSource,
  type Selection,
  type SelectResult,
  type SubqueryField,
  type SubqueryLike,
  sourceFields,
} from './selection.js';

type Source = AnyTable | Subquery<string, any>;
/** The name a source is referred to by in a query (its alias), which keys its row in whole-row joins. */
type SourceName<S> =
  S extends TableBase<any, any, infer A> ? A : S extends Subquery<infer A, any> ? A : never;
type Mode = 'single' | 'multiple' | 'partial';

interface SelectState {
  readonly selection: Selection | undefined;
  readonly distinct: boolean;
  readonly from: Source;
  readonly joins: readonly { readonly source: Source; readonly type: 'inner' | 'left'; readonly on: Node }[];
  readonly where: Node | undefined;
  readonly groupBy: readonly Node[];
  readonly having: Node | undefined;
  readonly orderBy: readonly OrderNode[];
  readonly limit: Node | undefined;
  readonly offset: Node | undefined;
  readonly compound: CompoundNode['rest'];
  /** The first part's own ORDER BY / LIMIT / OFFSET, set aside when union() etc. start a compound. */
  readonly firstPaging?: Pick<SelectNode, 'orderBy' | 'limit' | 'offset'>;
}

function sourceNode(source: Source): JoinNode['source'] {
  return is(source, TableBase)
    ? { kind: 'tableRef', table: source }
    : { kind: 'subquery', query: source.$query, alias: source.$alias };
}

function orderNodes(terms: (OrderBy | SQL<unknown> | { kind: 'column' })[]): OrderNode[] {
  return terms.map((term) =>
    term instanceof OrderBy ? term.node : { expr: toNode(term), direction: 'ASC' as const, nulls: undefined },
  );
}

function countNode(value: number | Placeholder, what: string): Node {
  if (typeof value === 'number' && (!Number.isInteger(value) || value < 0)) {
    throw new UsageError(`${what}() takes a whole number of 0 or more, got ${value}`);
  }
  return toNode(value, { kind: 'integer' });
}

/** `db.select(...)`: the select list, waiting for `.from()`. */
export class SelectBuilder<TSelection extends Selection | undefined> {
  constructor(
    private readonly runner: QueryRunner,
    private readonly selection: TSelection,
    private readonly distinct: boolean,
  ) {}

  /** The table or subquery to read. */
  from<S extends Source>(
    source: S,
  ): TSelection extends Selection
    ? SelectQuery<'partial', TSelection, never>
    : SelectQuery<'single', { [K in SourceName<S>]: S }, never> {
    if (!is(source, TableBase) && !is(source, Subquery)) {
      throw new UsageError('select().from() takes a table or a subquery made with .as()');
    }
    return new SelectQuery<any, any, any>(this.runner, {
      selection: this.selection,
      distinct: this.distinct,
      from: source,
      joins: [],
      where: undefined,
      groupBy: [],
      having: undefined,
      orderBy: [],
      limit: undefined,
      offset: undefined,
      compound: [],
    }) as any;
  }
}

/**
 * What `union()`, `unionAll()`, `intersect()` and `except()` take: another select query whose rows
 * fit this one's. (Typing the parameter as `SelectQuery<any, any, any>` made TypeScript compare the
 * two builders member by member, and no real query passed.)
 */
export interface CompoundOperand<TRow> extends SubquerySource {
  readonly $row: TRow;
}

/**
 * A select query: chain where, joins, grouping, order and paging, then await it for rows.
 *
 * @example
 *   const open = await db.select().from(todos).where(eq(todos.done, false)).orderBy(desc(todos.updatedAt)).limit(20);
 */
export class SelectQuery<TMode extends Mode, TSel, TNullable extends string>
  extends QueryBase<SelectResult<TMode, TSel, TNullable>[]>
  implements SubquerySource
{
  static readonly [entityKind]: string = 'SelectQuery';
  declare readonly $row: SelectResult<TMode, TSel, TNullable>;

  constructor(
    runner: QueryRunner,
    private readonly state: SelectState,
  ) {
    super(runner);
  }

  private with(patch: Partial<SelectState>): any {
    return new SelectQuery(this.runner, { ...this.state, ...patch });
  }

  private join<S extends Source>(type: 'inner' | 'left', source: S, on: SQL<unknown> | undefined): any {
    if (!is(source, TableBase) && !is(source, Subquery))
      throw new UsageError('join() takes a table or a subquery');
    if (!on) throw new UsageError('join() needs an on condition');
    return this.with({ joins: [...this.state.joins, { source, type, on: on.node }] });
  }

  /** Rows of both sides that match `on`. */
  innerJoin<S extends Source>(
    source: S,
    on: SQL<unknown> | undefined,
  ): SelectQuery<
    TMode extends 'partial' ? 'partial' : 'multiple',
    TMode extends 'partial' ? TSel : TSel & { [K in SourceName<S>]: S },
    TNullable
  > {
    return this.join('inner', source, on);
  }

  /** Every row of the left side; the joined side is null where nothing matches. */
  leftJoin<S extends Source>(
    source: S,
    on: SQL<unknown> | undefined,
  ): SelectQuery<
    TMode extends 'partial' ? 'partial' : 'multiple',
    TMode extends 'partial' ? TSel : TSel & { [K in SourceName<S>]: S },
    TNullable | SourceName<S>
  > {
    return this.join('left', source, on);
  }

  /** Keeps the rows the condition holds for. Undefined keeps every row. */
  where(condition: SQL<unknown> | undefined): SelectQuery<TMode, TSel, TNullable> {
    return this.with({ where: condition?.node });
  }

  /** Groups rows for aggregates. */
  groupBy(...expressions: (SQL<unknown> | RowSource | object)[]): SelectQuery<TMode, TSel, TNullable> {
    return this.with({ groupBy: expressions.map((e) => toNode(e)) });
  }

  /** Keeps the groups the condition holds for. */
  having(condition: SQL<unknown> | undefined): SelectQuery<TMode, TSel, TNullable> {
    return this.with({ having: condition?.node });
  }

  /** Orders rows: columns (ascending), `asc()`, `desc()`, with `.nullsFirst()` / `.nullsLast()`. */
  orderBy(...terms: (OrderBy | SQL<unknown> | { kind: 'column' })[]): SelectQuery<TMode, TSel, TNullable> {
    return this.with({ orderBy: orderNodes(terms) });
  }

  /** At most this many rows. */
  limit(count: number | Placeholder): SelectQuery<TMode, TSel, TNullable> {
    return this.with({ limit: countNode(count, 'limit') });
  }

  /** Skips this many rows. */
  offset(count: number | Placeholder): SelectQuery<TMode, TSel, TNullable> {
    return this.with({ offset: countNode(count, 'offset') });
  }

  private combine(op: CompoundNode['rest'][number]['op'], other: CompoundOperand<unknown>): any {
    if (!is(other, SelectQuery)) throw new UsageError(`${op.toLowerCase()}() takes another select query`);
    if (other.state.compound.length > 0) {
      throw new UsageError(
        `${op.toLowerCase()}() takes a plain select: chain compounds as a.union(b).union(c)`,
      );
    }
    const s = this.state;
    const part = { op, query: other.selectNode() };
    if (s.compound.length > 0) return this.with({ compound: [...s.compound, part] });
    // The first part keeps its own order and paging; orderBy/limit called after this apply to the compound.
    return this.with({
      compound: [part],
      firstPaging: { orderBy: s.orderBy, limit: s.limit, offset: s.offset },
      orderBy: [],
      limit: undefined,
      offset: undefined,
    });
  }

  /** Rows of both queries, without duplicates. */
  union(other: CompoundOperand<SelectResult<TMode, TSel, TNullable>>): SelectQuery<TMode, TSel, TNullable> {
    return this.combine('UNION', other);
  }
  /** Rows of both queries, duplicates kept. */
  unionAll(
    other: CompoundOperand<SelectResult<TMode, TSel, TNullable>>,
  ): SelectQuery<TMode, TSel, TNullable> {
    return this.combine('UNION ALL', other);
  }
  /** Rows found by both queries. */
  intersect(
    other: CompoundOperand<SelectResult<TMode, TSel, TNullable>>,
  ): SelectQuery<TMode, TSel, TNullable> {
    return this.combine('INTERSECT', other);
  }
  /** Rows of this query not found by the other. */
  except(other: CompoundOperand<SelectResult<TMode, TSel, TNullable>>): SelectQuery<TMode, TSel, TNullable> {
    return this.combine('EXCEPT', other);
  }

  /**
   * A live query: the current rows first, then new rows after every commit that changes them.
   * Joins, aggregates and subqueries are tracked (every table the query reads).
   *
   * @example
   *   const stop = db.select().from(todos).where(eq(todos.done, false)).watch().subscribe(render);
   */
  watch(): LiveQuery<SelectResult<TMode, TSel, TNullable>[]> {
    const runner = this.runner;
    const liveSource = runner.liveSource?.bind(runner);
    if (!liveSource) throw new UsageError('watch() runs on a database, not inside a transaction');
    const compiled = this.compiled();
    if (compiled.slots.length > 0) throw new UsageError('watch(): a live query cannot have placeholders');
    const rowFilter = this.rowFilter();
    const execute = () => runCompiledAsync<SelectResult<TMode, TSel, TNullable>[]>(runner, () => compiled);
    return new LiveQuery((create) => liveSource(compiled, execute, create, rowFilter));
  }

  /** A test of changed rows, for a query on one table whose filter TypeScript can evaluate. */
  private rowFilter(): RowFilter | undefined {
    const { from, joins, where, compound } = this.state;
    if (joins.length > 0 || compound.length > 0 || !where || !is(from, TableBase)) return undefined;
    // A subquery in the select list, grouping, having or order reads rows the filter does not cover.
    const { groupBy, having, orderBy } = this.state;
    const rest = [...this.fields().map((f) => f.expr), ...groupBy, having, ...orderBy.map((o) => o.expr)];
    if (rest.some(readsTables)) return undefined;
    const matches = compileRowPredicate(where, from);
    return matches ? { table: from.$name, matches } : undefined;
  }

  /** This query as a named subquery, to select from or join: `db.select().from(q.as('sq'))`. */
  as<A extends string>(alias: A): AliasedSubquery<A, SelectResult<TMode, TSel, TNullable>> {
    return createSubquery(alias, this.toNode(), this.selectNode().fields);
  }

  private fields(): SelectField[] {
    const { selection, from, joins } = this.state;
    if (selection) return partialFields(selection, 'select()');
    if (joins.length === 0) return sourceFields(from as any, false, false);
    return [
      ...sourceFields(from as any, true, false),
      ...joins.flatMap((j) => sourceFields(j.source as any, true, j.type === 'left')),
    ];
  }

  private selectNode(): SelectNode {
    const s = this.state;
    return {
      kind: 'select',
      fields: this.fields(),
      distinct: s.distinct,
      from: sourceNode(s.from),
      joins: s.joins.map((j) => ({ type: j.type, source: sourceNode(j.source), on: j.on })),
      where: s.where,
      groupBy: s.groupBy,
      having: s.having,
      orderBy: s.compound.length > 0 ? (s.firstPaging?.orderBy ?? []) : s.orderBy,
      limit: s.compound.length > 0 ? s.firstPaging?.limit : s.limit,
      offset: s.compound.length > 0 ? s.firstPaging?.offset : s.offset,
    };
  }

  toNode(): SelectNode | CompoundNode {
    const s = this.state;
    if (s.compound.length === 0) return this.selectNode();
    // ORDER BY / LIMIT given after union() apply to the whole compound.
    return {
      kind: 'compound',
      first: this.selectNode(),
      rest: s.compound,
      orderBy: s.orderBy,
      limit: s.limit,
      offset: s.offset,
    };
  }

  [toSubqueryNode](): SubqueryNode {
    return { kind: 'subquery', query: this.toNode(), alias: undefined };
  }
}

/** Whether an expression reads a table of its own (a subquery, EXISTS, a table named in raw SQL). */
function readsTables(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(readsTables);
  switch ((value as { kind?: unknown }).kind) {
    case 'tableRef':
    case 'subquery':
    case 'exists':
    case 'select':
    case 'compound':
    case 'identifier':
      return true;
    case 'column':
    case 'param':
    case 'ref':
    case 'star':
      return false;
  }
  return Object.values(value).some(readsTables);
}

/** A select query with a name, usable like a table: `sq.title` is its `title` column. */
export class Subquery<TAlias extends string, TRow> implements SubqueryLike, RowSource {
  static readonly [entityKind]: string = 'Subquery';
  declare readonly $inferSelect: TRow;
  constructor(
    readonly $alias: TAlias,
    readonly $query: SelectNode | CompoundNode,
    readonly $fields: readonly SelectField[],
  ) {}
}

export type AliasedSubquery<TAlias extends string, TRow> = Subquery<TAlias, TRow> & {
  readonly [K in keyof TRow]: SubqueryField<TRow[K], TAlias>;
};

function createSubquery<A extends string, TRow>(
  alias: A,
  query: SelectNode | CompoundNode,
  fields: readonly SelectField[],
): AliasedSubquery<A, TRow> {
  if (fields.some((f) => f.path.length > 1)) {
    throw new UsageError('as(): a subquery needs a flat select list; use select({...}) when joining');
  }
  const sq = new Subquery<A, TRow>(alias, query, fields);
  for (const f of fields) {
    (sq as any)[f.key] = new SQL({ kind: 'ref', table: alias, name: f.key }, f.decoder);
  }
  return sq as AliasedSubquery<A, TRow>;
}

export type { Simplify };
