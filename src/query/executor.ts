import type { DriverQuery, DriverResult } from '../database/driver.js';
import type { Dialect } from '../dialect/dialect.js';
import type { CompiledQuery } from '../dialect/query-compiler.js';
import type { LiveSource } from '../live/live-source.js';

type MaybePromise<T> = T | Promise<T>;

/**
 * Where builders send their compiled queries: a Database, or a Transaction holding one connection.
 * `run` translates driver errors into syncline's classes.
 */
export interface QueryRunner {
  readonly dialect: Dialect;
  run(query: DriverQuery): MaybePromise<DriverResult>;
  /** Called after a statement that wrote `table` ran (table-change events, live queries). */
  wrote(table: string): void;
  /** The shared live source of a compiled query; only a Database has one (not a transaction). */
  liveSource?<T>(
    compiled: CompiledQuery,
    execute: () => Promise<T>,
    create?: boolean,
  ): LiveSource<T> | undefined;
}
