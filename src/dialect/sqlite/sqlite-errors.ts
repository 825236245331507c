import { ConstraintError, type ConstraintKind, DatabaseError, SynclineError } from '../../errors.js';

const KINDS: Record<string, ConstraintKind> = {
  SQLITE_CONSTRAINT_UNIQUE: 'unique',
  SQLITE_CONSTRAINT_PRIMARYKEY: 'primaryKey',
  SQLITE_CONSTRAINT_FOREIGNKEY: 'foreignKey',
  SQLITE_CONSTRAINT_CHECK: 'check',
  SQLITE_CONSTRAINT_NOTNULL: 'notNull',
};

/**
 * Maps a SQLite error (better-sqlite3's `SqliteError`, or the WASM build's, which carry the same
 * extended code names) onto syncline's classes. SQLite names the table and column in its
 * messages: "UNIQUE constraint failed: todos.title", "CHECK constraint failed: name".
 */
export function translateSqliteError(error: unknown): SynclineError {
  if (error instanceof SynclineError) return error;
  const e = error as { code?: unknown; message?: string };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = e?.message ?? String(error);
  const kind = code ? KINDS[code] : undefined;
  if (kind) {
    const detail = message.replace(/^[A-Z ]+constraint failed:?\s*/i, '');
    let table: string | undefined;
    let column: string | undefined;
    let constraint: string | undefined;
    if (kind === 'check') constraint = detail || undefined;
    else if (kind !== 'foreignKey') {
      const first = detail.split(',')[0]?.trim() ?? '';
      const dot = first.indexOf('.');
      if (dot > 0) {
        table = first.slice(0, dot);
        column = detail
          .split(',')
          .map((part) => part.trim().slice(part.trim().indexOf('.') + 1))
          .join(', ');
      }
    }
    return new ConstraintError({ kind, table, column, constraint }, { cause: error });
  }
  return new DatabaseError(`SQLite: ${message}`, code, { cause: error });
}
