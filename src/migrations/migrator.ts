import type { Transaction } from '../database/transaction.js';
import type { Dialect } from '../dialect/dialect.js';
import { quoteIdentifier } from '../dialect/quote-identifier.js';
import { MigrationError } from '../errors.js';
import type { Column } from '../schema/column.js';
import type { Schema } from '../schema/schema.js';
import type { AnyTable } from '../schema/table.js';
import { SQL, sql } from '../sql/sql.js';
import { transactionRunner } from './sql-runner.js';

const q = quoteIdentifier;
const tableName = (t: AnyTable | string) => (typeof t === 'string' ? t : t.$name);

/**
 * What a migration step works with (`m` in `migrations: { 2: async (m) => ... }`). Every method
 * runs inside the step's transaction; `m.db` is that transaction, for moving data.
 *
 * @example
 *   migrations: {
 *     2: async (m) => { await m.addColumn(todos, todos.priority); },
 *     3: async (m) => { await m.alterTable(todos); await m.createIndex(todos, 'todos_due_idx'); },
 *   }
 */
export class Migrator {
  private readonly run: (text: string, params?: readonly unknown[]) => Promise<Record<string, unknown>[]>;

  constructor(
    /** The step's transaction: query and write data with it. */
    readonly db: Transaction,
    private readonly dialect: Dialect,
    private readonly schema: Schema,
  ) {
    this.run = transactionRunner(db);
  }

  private async all(statements: readonly string[]): Promise<void> {
    for (const statement of statements) await this.run(statement);
  }

  /** Creates every table and index of the schema (what a new database gets). */
  async createAll(): Promise<void> {
    await this.all(this.dialect.ddl.createSchema(this.schema.tableList));
  }

  /** Creates a table as declared, with its indexes. */
  async createTable(table: AnyTable): Promise<void> {
    const ddl = this.dialect.ddl;
    await this.all([ddl.createTable(table, false), ...ddl.createIndexes(table, false)]);
  }

  /** Drops a table (a declared one, or one known only by name). */
  async dropTable(table: AnyTable | string): Promise<void> {
    await this.run(`DROP TABLE ${q(tableName(table))}`);
  }

  /** Renames a table. @example await m.renameTable('todo_items', 'todos') */
  async renameTable(from: AnyTable | string, to: string): Promise<void> {
    await this.run(`ALTER TABLE ${q(tableName(from))} RENAME TO ${q(to)}`);
    await this.dialect.migrations.renamed?.(this.run, { table: tableName(from), to });
  }

  /**
   * Adds a declared column. Where SQLite cannot add it in place (a unique or primary key column, a
   * default that is not a constant, NOT NULL without a default) the table is rebuilt instead.
   */
  async addColumn(table: AnyTable, column: Column<any, any, any, any>): Promise<void> {
    const statements = this.dialect.migrations.addColumn(table, column);
    if (statements) await this.all(statements);
    else await this.alterTable(table);
  }

  /** Drops a column. Pass the table as now declared (without the column). */
  async dropColumn(table: AnyTable, column: string | Column<any, any, any, any>): Promise<void> {
    const name = typeof column === 'string' ? column : column.name;
    const statements = this.dialect.migrations.dropColumn(table, name);
    if (statements) await this.all(statements);
    else await this.alterTable(table);
  }

  /** Renames a column. @example await m.renameColumn(todos, 'name', 'title') */
  async renameColumn(table: AnyTable | string, from: string, to: string): Promise<void> {
    await this.run(`ALTER TABLE ${q(tableName(table))} RENAME COLUMN ${q(from)} TO ${q(to)}`);
    await this.dialect.migrations.renamed?.(this.run, { table: tableName(table), column: { from, to } });
  }

  /** Creates one of a table's declared indexes, by name. */
  async createIndex(table: AnyTable, indexName: string): Promise<void> {
    const position = table.$indexes.findIndex((i) => i.name === indexName);
    if (position < 0) {
      const known = table.$indexes.map((i) => i.name).join(', ') || 'none';
      throw new MigrationError(
        `createIndex: ${table.$name} declares no index "${indexName}" (it declares: ${known})`,
      );
    }
    await this.run(this.dialect.ddl.createIndexes(table, false)[position]!);
  }

  /** Drops an index by name. */
  async dropIndex(indexName: string): Promise<void> {
    await this.run(`DROP INDEX IF EXISTS ${q(indexName)}`);
  }

  /**
   * Makes a live table match its declaration: column types, nullability, defaults, and the unique,
   * check and foreign key constraints. PostgreSQL alters in place; SQLite, which cannot, rebuilds the
   * table (create, copy, drop, rename) keeping its rows, indexes and triggers, and checks foreign keys.
   */
  async alterTable(table: AnyTable): Promise<void> {
    await this.dialect.migrations.alterTable(this.run, table);
  }

  /**
   * Runs any other SQL. A column in the template is written with its table (`"todos"."title"`),
   * which a SET clause does not take: name the columns SET assigns bare.
   * @example await m.sql`UPDATE ${todos} SET title = trim(${todos.title})`
   */
  async sql(
    strings: TemplateStringsArray | SQL<unknown>,
    ...values: unknown[]
  ): Promise<Record<string, unknown>[]> {
    const query = strings instanceof SQL ? strings : sql(strings as TemplateStringsArray, ...values);
    return this.db.execute(query);
  }
}
