import { UsageError } from '../errors.js';
import type { AnyTable } from '../schema/table.js';
import type { DeleteNode, Node } from '../sql/nodes.js';
import type { SQL } from '../sql/sql.js';
import type { QueryRunner } from './executor.js';
import { QueryBase } from './query-base.js';
import { returningFields } from './returning.js';
import { deletedRows } from './row-images.js';
import type { WriteResult } from './run-compiled.js';
import type { Selection, SelectResult } from './selection.js';

interface DeleteState {
  readonly where: Node | undefined;
  readonly allRows: boolean;
  readonly returning: Selection | null | undefined;
}

/**
 * A delete. It needs a `where()`, or `allRows()` to say that every row is meant.
 *
 * @example
 *   const gone = await db.delete(todos).where(eq(todos.done, true)).returning({ id: todos.id });
 */
export class DeleteQuery<T extends AnyTable, TResult = WriteResult> extends QueryBase<TResult> {
  constructor(
    runner: QueryRunner,
    private readonly table: T,
    private readonly state: DeleteState = { where: undefined, allRows: false, returning: undefined },
  ) {
    super(runner);
  }

  private with(patch: Partial<DeleteState>): any {
    return new DeleteQuery(this.runner, this.table, { ...this.state, ...patch });
  }

  /** Deletes the rows the condition holds for. */
  where(condition: SQL<unknown> | undefined): DeleteQuery<T, TResult> {
    return this.with({ where: condition?.node });
  }

  /** Deletes every row of the table, on purpose. */
  allRows(): DeleteQuery<T, TResult> {
    return this.with({ allRows: true });
  }

  /** Returns the deleted rows: every column, or the chosen fields. */
  returning(): DeleteQuery<T, T['$inferSelect'][]>;
  returning<S extends Selection>(fields: S): DeleteQuery<T, SelectResult<'partial', S, never>[]>;
  returning(fields?: Selection): DeleteQuery<T, unknown> {
    return this.with({ returning: fields ?? null });
  }

  protected override validate(): void {
    if (!this.state.where && !this.state.allRows) {
      throw new UsageError(
        `delete from ${this.table.$name} has no where clause: add .where(...), or .allRows() to delete every row`,
      );
    }
  }

  /** Like an update: with row-filtering live queries on the table, the deleted rows are reported. */
  override execute(): Promise<TResult> {
    const table = this.table;
    if (this.state.returning !== undefined || !this.runner.wantsRowChanges?.(table.$name))
      return super.execute();
    const capture = this.with({ returning: null }) as DeleteQuery<T, Record<string, unknown>[]>;
    return capture
      .executeReportingRows((rows) => deletedRows(table, rows as Record<string, unknown>[]))
      .then((rows) => ({ rowsAffected: rows.length }) as TResult);
  }

  toNode(): DeleteNode {
    const returning = this.state.returning;
    return {
      kind: 'delete',
      table: this.table,
      where: this.state.where,
      returning:
        returning === undefined
          ? undefined
          : returningFields(this.table, returning ?? undefined, `delete from ${this.table.$name}`),
    };
  }
}
