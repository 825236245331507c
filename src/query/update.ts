import { UsageError } from '../errors.js';
import type { AnyTable } from '../schema/table.js';
import type { Node, UpdateNode } from '../sql/nodes.js';
import type { SQL } from '../sql/sql.js';
import type { QueryRunner } from './executor.js';
import { QueryBase } from './query-base.js';
import { returningFields } from './returning.js';
import { updatedRows } from './row-images.js';
import type { WriteResult } from './run-compiled.js';
import type { Selection, SelectResult } from './selection.js';
import { columnForKey, valueNode, type WriteValue } from './values.js';

export type UpdateSet<T extends AnyTable> = Partial<{
  [K in keyof T['$inferInsert']]: WriteValue<T['$inferInsert'][K]>;
}>;

interface UpdateState {
  readonly set: Record<string, unknown>;
  readonly where: Node | undefined;
  readonly allRows: boolean;
  readonly returning: Selection | null | undefined;
}

/** `db.update(table)`: waiting for `.set()`. */
export class UpdateBuilder<T extends AnyTable> {
  constructor(
    private readonly runner: QueryRunner,
    private readonly table: T,
  ) {}

  /** The new values. Keys left out (or undefined) keep their values. */
  set(values: UpdateSet<T>): UpdateQuery<T, WriteResult> {
    return new UpdateQuery(this.runner, this.table, {
      set: values as Record<string, unknown>,
      where: undefined,
      allRows: false,
      returning: undefined,
    });
  }
}

/**
 * An update. It needs a `where()`, or `allRows()` to say that every row is meant.
 *
 * @example
 *   await db.update(todos).set({ done: true }).where(eq(todos.id, id));
 */
export class UpdateQuery<T extends AnyTable, TResult> extends QueryBase<TResult> {
  constructor(
    runner: QueryRunner,
    private readonly table: T,
    private readonly state: UpdateState,
  ) {
    super(runner);
  }

  private with(patch: Partial<UpdateState>): any {
    return new UpdateQuery(this.runner, this.table, { ...this.state, ...patch });
  }

  /** Updates the rows the condition holds for. */
  where(condition: SQL<unknown> | undefined): UpdateQuery<T, TResult> {
    return this.with({ where: condition?.node });
  }

  /** Updates every row of the table, on purpose. */
  allRows(): UpdateQuery<T, TResult> {
    return this.with({ allRows: true });
  }

  /** Returns the updated rows: every column, or the chosen fields. */
  returning(): UpdateQuery<T, T['$inferSelect'][]>;
  returning<S extends Selection>(fields: S): UpdateQuery<T, SelectResult<'partial', S, never>[]>;
  returning(fields?: Selection): UpdateQuery<T, unknown> {
    return this.with({ returning: fields ?? null });
  }

  protected override validate(): void {
    if (!this.state.where && !this.state.allRows) {
      throw new UsageError(
        `update ${this.table.$name} has no where clause: add .where(...), or .allRows() to update every row`,
      );
    }
  }

  /**
   * When live queries filter rows of this table, the update returns the rows it changed (a
   * RETURNING of every column) and hands them to the change event, so unaffected live queries
   * skip a run. The caller still gets `{ rowsAffected }`.
   */
  override execute(): Promise<TResult> {
    const table = this.table;
    if (this.state.returning !== undefined || !this.runner.wantsRowChanges?.(table.$name))
      return super.execute();
    const set = new Set(
      Object.entries(this.state.set)
        .filter(([, value]) => value !== undefined)
        .map(([key]) => columnForKey(table, key, `update ${table.$name}`).name),
    );
    const capture = this.with({ returning: null }) as UpdateQuery<T, Record<string, unknown>[]>;
    return capture
      .executeReportingRows((rows) => updatedRows(table, rows as Record<string, unknown>[], set))
      .then((rows) => ({ rowsAffected: rows.length }) as TResult);
  }

  toNode(): UpdateNode {
    const table = this.table;
    const context = `update ${table.$name}`;
    const set = Object.entries(this.state.set)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => {
        const column = columnForKey(table, key, context);
        return { column, value: valueNode(column, value) };
      });
    if (set.length === 0) throw new UsageError(`${context}: set() has no values to write`);
    const returning = this.state.returning;
    return {
      kind: 'update',
      table,
      set,
      where: this.state.where,
      returning:
        returning === undefined ? undefined : returningFields(table, returning ?? undefined, context),
    };
  }
}
