import type { Column } from '../../schema/column.js';
import { type CompileState, QueryCompiler } from '../query-compiler.js';

/** PostgreSQL's spelling: `$n` parameters, native ILIKE, DEFAULT in VALUES. */
export class PostgresQueryCompiler extends QueryCompiler {
  protected parameter(index: number): string {
    return `$${index + 1}`;
  }

  literal(value: unknown): string {
    if (value === null || value === undefined) return 'NULL';
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
    if (value instanceof Uint8Array) {
      return `'\\x${Array.from(value, (b) => b.toString(16).padStart(2, '0')).join('')}'::bytea`;
    }
    return `'${String(value).replaceAll("'", "''")}'`;
  }

  protected defaultCell(state: CompileState, _column: Column<any, any, any, any>): void {
    state.sql += 'DEFAULT';
  }
}
