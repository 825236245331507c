import type { DriverQuery, DriverResult } from '../database/driver.js';
import type { Dialect } from '../dialect/dialect.js';

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
}
