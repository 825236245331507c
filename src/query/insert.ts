import type { CompiledQuery } from '../dialect/query-compiler.js';
import { UsageError } from '../errors.js';
import type { RowChange } from '../live/row-changes.js';
import type { Column } from '../schema/column.js';
import type { AnyTable } from '../schema/table.js';
import type { InsertNode, OnConflictNode } from '../sql/nodes.js';
import type { SQL } from '../sql/sql.js';
import type { QueryRunner } from './executor.js';
import { QueryBase } from './query-base.js';
import { returningFields } from './returning.js';
import { runCompiledStatements, type WriteResult } from './run-compiled.js';
import type { Selection, SelectResult } from './selection.js';
import { columnForKey, isPlainValue, valueNode, type WriteValue } from './values.js';

/** A row for `values()`: the table's insert type, where any value may also be SQL or a placeholder. */
export type InsertRow<T extends AnyTable> = {
  [K in keyof T['$inferInsert']]: WriteValue<T['$inferInsert'][K]>;
};

/** A column of the table T (not of any table: `$columnList` is typed loosely). */
type ColumnOf<T extends AnyTable> = T['$columns'][keyof T['$columns']];

export interface OnConflictUpdate<T extends AnyTable> {
  /** The unique column(s) whose conflict triggers the update. */
  target: ColumnOf<T> | ColumnOf<T>[];
  /** For a partial unique index: its WHERE condition. */
  targetWhere?: SQL<unknown>;
  /** The new values; `excluded(col)` or ``sql`excluded.col` `` is the value the insert tried to write. */
  set: Partial<{ [K in keyof T['$inferInsert']]: WriteValue<T['$inferInsert'][K]> }>;
  /** Update only the conflicting rows this condition holds for. */
  where?: SQL<unknown>;
}

interface InsertState {
  readonly rows: readonly Record<string, unknown>[] | undefined;
  readonly onConflict: ((table: AnyTable) => OnConflictNode) | undefined;
  readonly returning: Selection | null | undefined;
}

/**
 * One pass over the rows of `values()`: the column of each key given a value, how many values each
 * row gives, and whether every value is bound as it is (no SQL, no placeholder): rows that are plain
 * and complete skip building a node per cell (PlainRowsNode). A function, not a method of the
 * builder: V8 drops optimized code that holds the map of an object no longer alive, and a full GC
 * frees the maps of short-lived builders, which then cost a 10,000-row insert twice its time.
 */
function scanRows(
  table: AnyTable,
  rows: readonly Record<string, unknown>[],
  context: string,
): { byKey: Map<string, Column<any, any, any, any>>; defined: number[]; plain: boolean } {
  const byKey = new Map<string, Column<any, any, any, any>>();
  let plain = true;
  const defined = new Array<number>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    let count = 0;
    for (const key in row) {
      const value = row[key];
      if (value === undefined) continue;
      count++;
      let column = byKey.get(key);
      if (column === undefined) {
        column = columnForKey(table, key, context);
        byKey.set(key, column);
      }
      // An object is a json value unless it is SQL, a placeholder or a column.
      if (plain && !isPlainValue(value) && valueNode(column, value).kind !== 'param') plain = false;
    }
    defined[r] = count;
  }
  return { byKey, defined, plain };
}

/** `db.insert(table)`: waiting for `.values()`. */
export class InsertBuilder<T extends AnyTable> {
  constructor(
    private readonly runner: QueryRunner,
    private readonly table: T,
  ) {}

  /** One row or many. Columns left out get their defaults. */
  values(rows: InsertRow<T> | InsertRow<T>[]): InsertQuery<T, WriteResult> {
    const list = Array.isArray(rows) ? rows : [rows];
    if (list.length === 0)
      throw new UsageError(`insert into ${this.table.$name}: values() got an empty list`);
    return new InsertQuery(this.runner, this.table, {
      rows: list,
      onConflict: undefined,
      returning: undefined,
    });
  }
}

/**
 * An insert of one or more rows, with optional conflict handling and `returning()`.
 *
 * @example
 *   const [todo] = await db.insert(todos).values({ listId, title: 'Milk' }).returning();
 *   await db.insert(todos).values(rows).onConflictDoUpdate({ target: todos.id, set: { title: excluded(todos.title) } });
 */
export class InsertQuery<T extends AnyTable, TResult> extends QueryBase<TResult> {
  constructor(
    runner: QueryRunner,
    private readonly table: T,
    private readonly state: InsertState,
  ) {
    super(runner);
  }

  private with(patch: Partial<InsertState>): any {
    return new InsertQuery(this.runner, this.table, { ...this.state, ...patch });
  }

  /** Skips rows that conflict (on `target`, or on any unique constraint). */
  onConflictDoNothing(config: { target?: ColumnOf<T> | ColumnOf<T>[] } = {}): InsertQuery<T, TResult> {
    const target = config.target === undefined ? [] : [config.target].flat();
    return this.with({ onConflict: () => ({ target, targetWhere: undefined, set: [], where: undefined }) });
  }

  /** Updates the existing row when the insert conflicts on `target` (an upsert). */
  onConflictDoUpdate(config: OnConflictUpdate<T>): InsertQuery<T, TResult> {
    const target = [config.target].flat();
    if (target.length === 0)
      throw new UsageError(`insert into ${this.table.$name}: onConflictDoUpdate() needs a target`);
    return this.with({
      onConflict: (table: AnyTable) => {
        const set = Object.entries(config.set)
          .filter(([, v]) => v !== undefined)
          .map(([key, value]) => {
            const column = columnForKey(table, key, `insert into ${table.$name} on conflict`);
            return { column, value: valueNode(column, value) };
          });
        if (set.length === 0) {
          throw new UsageError(`insert into ${table.$name}: onConflictDoUpdate() has nothing to set`);
        }
        return { target, targetWhere: config.targetWhere?.node, set, where: config.where?.node };
      },
    });
  }

  /** Returns the inserted rows: every column, or the chosen fields. */
  returning(): InsertQuery<T, T['$inferSelect'][]>;
  returning<S extends Selection>(fields: S): InsertQuery<T, SelectResult<'partial', S, never>[]>;
  returning(fields?: Selection): InsertQuery<T, unknown> {
    return this.with({ returning: fields ?? null });
  }

  /**
   * When live queries filter rows of this table, the inserted rows go with the change event (their
   * given values; columns left to defaults count as unknown), so unaffected live queries skip a run.
   * A big insert the dialect splits into several statements runs them as one write.
   */
  override execute(): Promise<TResult> {
    const table = this.table;
    const reportRows = !this.state.onConflict && this.runner.wantsRowChanges?.(table.$name);
    let statements: readonly CompiledQuery[] | undefined;
    try {
      statements = this.split();
    } catch (error) {
      return Promise.reject(error);
    }
    if (statements) {
      // Every row is reported once, with the last statement; an earlier one reports none.
      const last = statements.length - 1;
      return runCompiledStatements<TResult>(
        this.runner,
        statements,
        reportRows ? (i) => (i === last ? this.insertedRows() : []) : undefined,
      );
    }
    if (!reportRows) return super.execute();
    return this.executeReportingRows(() => this.insertedRows());
  }

  /** The rows as the app gave them: what live queries learn of an insert. */
  private insertedRows(): RowChange[] {
    const columns = this.table.$columnList;
    return (this.state.rows ?? []).map((row) => {
      const after: Record<string, unknown> = {};
      for (const column of columns) {
        const value = row[column.key];
        if (value !== undefined && (typeof value !== 'object' || value === null || value instanceof Date)) {
          after[column.name] = value;
        }
      }
      return { before: null, after };
    });
  }

  private statements: readonly CompiledQuery[] | null | undefined;

  /** The statements the dialect splits this insert into, when it does (see compileInsertStatements). */
  private split(): readonly CompiledQuery[] | undefined {
    if (this.statements === undefined) {
      const rows = this.state.rows?.length ?? 0;
      this.statements =
        rows > 1 && this.runner.transaction
          ? (this.runner.dialect.compiler.compileInsertStatements(this.toNode()) ?? null)
          : null;
    }
    return this.statements ?? undefined;
  }

  private node: InsertNode | undefined;

  /** The insert's tree, built once (a builder never changes; a bulk insert's tree is costly). */
  toNode(): InsertNode {
    this.node ??= this.buildNode();
    return this.node;
  }

  private buildNode(): InsertNode {
    const table = this.table;
    const context = `insert into ${table.$name}`;
    const rows = this.state.rows ?? [];
    const { byKey, defined, plain } = scanRows(table, rows, context);
    const used = new Set(byKey.values());
    // Defaults computed in TypeScript are filled in for every row that leaves their column out.
    for (const column of table.$columnList) if (column.default?.kind === 'fn') used.add(column);
    const columns = table.$columnList.filter((c) => used.has(c));
    if (columns.length === 0 && rows.length > 1) {
      throw new UsageError(
        `${context}: several rows with no values at all; give at least one column a value`,
      );
    }
    // A row's defined keys are all columns, so a row defining as many as there are columns has all.
    const complete = plain && columns.length > 0 && defined.every((n) => n === columns.length);
    const cells: InsertNode['rows'] = complete
      ? { kind: 'plainRows', rows }
      : rows.map((row) =>
          columns.map((column) => {
            const value = row[column.key];
            if (value !== undefined) return valueNode(column, value);
            if (column.default?.kind === 'fn') return valueNode(column, column.default.fn());
            return undefined;
          }),
        );
    const returning = this.state.returning;
    return {
      kind: 'insert',
      table,
      columns,
      rows: cells,
      onConflict: this.state.onConflict?.(table),
      returning:
        returning === undefined ? undefined : returningFields(table, returning ?? undefined, context),
    };
  }
}
