import type { Column } from '../schema/column.js';
import type { AnyTable } from '../schema/table.js';
import type { SqlRunner } from './sql-runner.js';

/**
 * What a dialect does its own way when migrating: where the schema version lives, how concurrent
 * opens are kept apart, what a step must do around its transaction, and the statements SQLite
 * cannot run in place.
 */
export interface MigrationDialect {
  /** Takes the lock that makes concurrent opens migrate one at a time; returns its release. */
  lock(session: SqlRunner): Promise<() => Promise<void>>;
  /** The stored schema version, 0 for a database syncline never versioned. */
  readVersion(run: SqlRunner): Promise<number>;
  writeVersion(run: SqlRunner, version: number): Promise<void>;
  /**
   * Runs on the held connection before a step's transaction begins (SQLite: foreign keys off), and
   * returns what puts the connection back as it was once the step ended, committed or not.
   */
  beforeStep(session: SqlRunner): Promise<() => Promise<void>>;
  /** Runs inside the step's transaction before COMMIT (SQLite: foreign_key_check). */
  checkStep(run: SqlRunner): Promise<void>;
  /** Statements that drop a column, or undefined when the table must be rebuilt instead. */
  dropColumn(table: AnyTable, column: string): string[] | undefined;
  /**
   * After a column or table was renamed: brings what refers to it by name up to date (SQLite: the
   * sync client's outbox, whose pending rows name their table and columns, so that writes made
   * offline before an app update are pushed under the new names). Left out where nothing does.
   */
  renamed?(
    run: SqlRunner,
    rename: { table: string; to?: string; column?: { from: string; to: string } },
  ): Promise<void>;
  /** Statements that add a column, or undefined when the table must be rebuilt instead. */
  addColumn(table: AnyTable, column: Column<any, any, any, any>): string[] | undefined;
  /** Makes a live table match its declaration: type, nullability, default and constraints of every column. */
  alterTable(run: SqlRunner, table: AnyTable): Promise<void>;
}
