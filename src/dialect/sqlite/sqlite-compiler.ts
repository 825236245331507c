import type { Column } from '../../schema/column.js';
import type { Node } from '../../sql/nodes.js';
import { type CompileState, QueryCompiler } from '../query-compiler.js';

/** SQLite's spelling: `?` parameters, LIKE on lower() for ILIKE, LIMIT -1 before a bare OFFSET. */
export class SqliteQueryCompiler extends QueryCompiler {
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
