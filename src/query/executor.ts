import type { DriverQuery, DriverResult, MaybePromise } from '../database/driver.js';
import type { Dialect } from '../dialect/dialect.js';
import type { CompiledQuery } from '../dialect/query-compiler.js';
import type { LiveSource, RowFilter } from '../live/live-source.js';
import type { RowChange } from '../live/row-changes.js';

/**
 * Where builders send their compiled queries: a Database, or a Transaction holding one connection.
 * `run` translates driver errors into syncline's classes.
 */
export interface QueryRunner {
  readonly dialect: Dialect;
  run(query: DriverQuery): MaybePromise<DriverResult>;
  /** Called after a statement that wrote `table` ran (table-change events, live queries). */
  wrote(table: string, rows?: readonly RowChange[]): void;
  /**
   * Runs `fn` as one write: a transaction, or a savepoint in the runner's own transaction. A query
   * split into several statements (a big insert on SQLite) runs in it, all or nothing.
   */
  transaction?<R>(fn: (tx: QueryRunner) => Promise<R>): Promise<R>;
  /** True when live queries would use the rows a write to `table` changed (worth a RETURNING). */
  wantsRowChanges?(table: string): boolean;
  /** The shared live source of a compiled query; only a Database has one (not a transaction). */
  liveSource?<T>(
    compiled: CompiledQuery,
    execute: () => Promise<T>,
    create?: boolean,
    rowFilter?: RowFilter,
  ): LiveSource<T> | undefined;
}
