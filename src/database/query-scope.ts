import type { Dialect } from '../dialect/dialect.js';
import { UsageError } from '../errors.js';
import type { RowChange } from '../live/row-changes.js';
import { DeleteQuery } from '../query/delete.js';
import type { QueryRunner } from '../query/executor.js';
import { InsertBuilder } from '../query/insert.js';
import { SelectBuilder } from '../query/select.js';
import type { Selection } from '../query/selection.js';
import { UpdateBuilder } from '../query/update.js';
import type { AnyTable } from '../schema/table.js';
import { SQL } from '../sql/sql.js';
import type { DriverQuery, DriverResult, MaybePromise } from './driver.js';

/**
 * The query methods shared by a Database and a Transaction: each builds on the connection(s) it
 * stands for. Subclasses say how a statement runs and what happens to the tables it wrote.
 */
export abstract class QueryScope implements QueryRunner {
  abstract readonly dialect: Dialect;
  protected abstract runOnDriver(query: DriverQuery): MaybePromise<DriverResult>;
  abstract wrote(table: string, rows?: readonly RowChange[]): void;

  run(query: DriverQuery): MaybePromise<DriverResult> {
    const dialect = this.dialect;
    try {
      const result = this.runOnDriver(query);
      if (result instanceof Promise) {
        return result.catch((error) => {
          throw dialect.translateError(error);
        });
      }
      return result;
    } catch (error) {
      throw dialect.translateError(error);
    }
  }

  /**
   * Starts a select: every column of the table (`select()`), or the chosen fields.
   * @example db.select({ title: todos.title, n: count() }).from(todos).groupBy(todos.title)
   */
  select(): SelectBuilder<undefined>;
  select<S extends Selection>(fields: S): SelectBuilder<S>;
  select(fields?: Selection): SelectBuilder<any> {
    return new SelectBuilder(this, fields, false);
  }

  /** A select without duplicate rows (`SELECT DISTINCT`). */
  selectDistinct(): SelectBuilder<undefined>;
  selectDistinct<S extends Selection>(fields: S): SelectBuilder<S>;
  selectDistinct(fields?: Selection): SelectBuilder<any> {
    return new SelectBuilder(this, fields, true);
  }

  /** Starts an insert. @example db.insert(todos).values({ listId, title: 'Milk' }) */
  insert<T extends AnyTable>(table: T): InsertBuilder<T> {
    return new InsertBuilder(this, table);
  }

  /** Starts an update. @example db.update(todos).set({ done: true }).where(eq(todos.id, id)) */
  update<T extends AnyTable>(table: T): UpdateBuilder<T> {
    return new UpdateBuilder(this, table);
  }

  /** Starts a delete. @example db.delete(todos).where(eq(todos.id, id)) */
  delete<T extends AnyTable>(table: T): DeleteQuery<T> {
    return new DeleteQuery(this, table);
  }

  /**
   * Runs raw SQL built with the `sql` tag and returns its rows as objects keyed by column name.
   * @example const rows = await db.execute<{ n: number }>(sql`select count(*) as n from ${todos}`);
   */
  async execute<TRow = Record<string, unknown>>(query: SQL<unknown>): Promise<TRow[]> {
    if (!(query instanceof SQL)) throw new UsageError('execute() takes a query built with the sql`...` tag');
    const compiled = this.dialect.compiler.compile({ kind: 'raw', chunks: [query.node] });
    if (compiled.slots.length > 0)
      throw new UsageError('execute(): placeholders need prepare() on a builder query');
    const result = await this.run({
      sql: compiled.sql,
      params: compiled.params,
      arrayMode: false,
      needsBigInt: false,
    });
    return result.rows as TRow[];
  }
}
