import type { CompiledQuery } from '../dialect/query-compiler.js';
import type { RowChange } from '../live/row-changes.js';
import type { QueryNode } from '../sql/nodes.js';
import type { QueryRunner } from './executor.js';
import { PreparedQuery, runCompiledAsync } from './run-compiled.js';

/**
 * What every builder shares: it compiles its tree once (builders are immutable, so the result never
 * goes stale), runs when awaited, prepares, and shows its SQL.
 */
export abstract class QueryBase<TResult> implements PromiseLike<TResult> {
  private compiledQuery: CompiledQuery | undefined;

  constructor(protected readonly runner: QueryRunner) {}

  /** The tree this builder stands for. */
  abstract toNode(): QueryNode;

  /** Checks done before compiling (a where clause on update / delete, ...). */
  protected validate(): void {}

  protected compiled(): CompiledQuery {
    if (!this.compiledQuery) {
      this.validate();
      this.compiledQuery = this.runner.dialect.compiler.compile(this.toNode());
    }
    return this.compiledQuery;
  }

  /** The SQL text and parameters for this database's dialect. */
  toSQL(): { sql: string; params: unknown[] } {
    const c = this.compiled();
    return { sql: c.sql, params: [...c.params] };
  }

  /** Runs the query. Awaiting the builder does the same. */
  execute(): Promise<TResult> {
    return runCompiledAsync<TResult>(this.runner, () => this.compiled());
  }

  /** Runs the query and tells live queries which rows it changed (see `rowImages`). */
  protected executeReportingRows(
    rowChanges: (result: unknown) => readonly RowChange[] | undefined,
  ): Promise<TResult> {
    return runCompiledAsync<TResult>(this.runner, () => this.compiled(), rowChanges);
  }

  /** Compiles once for repeated runs with `sql.placeholder()` values. */
  prepare(): PreparedQuery<TResult> {
    return new PreparedQuery<TResult>(this.runner, this.compiled());
  }

  // biome-ignore lint/suspicious/noThenProperty: builders are awaited like promises, as in Drizzle and Kysely.
  then<R1 = TResult, R2 = never>(
    onfulfilled?: ((value: TResult) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.execute().then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<TResult | R> {
    return this.execute().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<TResult> {
    return this.execute().finally(onfinally);
  }
}
