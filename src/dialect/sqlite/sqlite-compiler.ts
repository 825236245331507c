import type { Column } from '../../schema/column.js';
import type { Node } from '../../sql/nodes.js';
import { type CompileState, QueryCompiler } from '../query-compiler.js';

/** SQLite's spelling: `?` parameters, LIKE on lower() for ILIKE, LIMIT -1 before a bare OFFSET. */
export class SqliteQueryCompiler extends QueryCompiler {
  /**
   * A bulk insert runs as statements of at most this many values. Measured on better-sqlite3 (10,000
   * rows of 6 values in one transaction, CPU time): statements of 250 rows took 0.71-0.87x the time of
   * single-row statements, one statement of 5,461 rows 0.88-1.11x; and a parameter list past 16k
   * values lands in V8's large-object space, which costs about as much again to fill.
   */
  protected override readonly bulkInsertParams = 1_500;

  protected parameter(): string {
    return '?';
  }

  literal(value: unknown): string {
    if (value === null || value === undefined) return 'NULL';
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    if (typeof value === 'boolean') return value ? '1' : '0';
    if (value instanceof Uint8Array)
      return `X'${Array.from(value, (b) => b.toString(16).padStart(2, '0')).join('')}'`;
    return `'${String(value).replaceAll("'", "''")}'`;
  }

  protected override ilike(state: CompileState, left: Node, right: Node, negated: boolean): void {
    state.sql += 'lower(';
    this.visit(state, left);
    state.sql += negated ? ') NOT LIKE lower(' : ') LIKE lower(';
    this.visit(state, right);
    state.sql += ')';
  }

  protected override limitOffset(
    state: CompileState,
    limit: Node | undefined,
    offset: Node | undefined,
  ): void {
    if (!limit && offset) state.sql += ' LIMIT -1';
    super.limitOffset(state, limit, offset);
  }

  protected defaultCell(state: CompileState, column: Column<any, any, any, any>): void {
    // SQLite has no DEFAULT keyword in VALUES, so the column's default expression is written out.
    state.sql += this.dialect.ddl.defaultSql(column) ?? 'NULL';
  }
}
