import { ConstraintError, type ConstraintKind, DatabaseError, SynclineError } from '../../errors.js';

/**
 * Maps a PostgreSQL error (node-postgres and PGlite both carry the server's fields: code, table,
 * column, constraint, detail) onto syncline's classes.
 */
export function translatePostgresError(error: unknown): SynclineError {
  if (error instanceof SynclineError) return error;
  const e = (error ?? {}) as {
    code?: string;
    message?: string;
    table?: string;
    column?: string;
    constraint?: string;
    detail?: string;
  };
  const message = e.message ?? String(error);
  let kind: ConstraintKind | undefined;
  switch (e.code) {
    case '23505':
      kind = e.constraint?.endsWith('_pkey') ? 'primaryKey' : 'unique';
      break;
    case '23503':
      kind = 'foreignKey';
      break;
    case '23514':
      kind = 'check';
      break;
    case '23502':
      kind = 'notNull';
      break;
  }
  if (kind) {
    // "Key (list_id)=(…) is not present in table "lists"." names the columns for unique and foreign keys.
    const keyColumns = e.detail?.match(/^Key \(([^)]*)\)=/)?.[1];
    return new ConstraintError(
      {
        kind,
        table: e.table,
        column: e.column ?? keyColumns,
        constraint: e.constraint,
        detail: e.detail,
      },
      { cause: error },
    );
  }
  return new DatabaseError(`PostgreSQL: ${message}`, e.code, { cause: error });
}
