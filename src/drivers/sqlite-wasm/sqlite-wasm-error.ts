/**
 * An error from SQLite WASM, the same on the main thread and across the worker boundary (where the
 * library's own `SQLite3Error` cannot travel): `code` is SQLite's extended result code name
 * ('SQLITE_CONSTRAINT_UNIQUE'), as better-sqlite3 gives it, so one translation serves both drivers.
 * syncline's errors keep it as `cause`.
 *
 * @example
 *   if (error.cause instanceof SqliteWasmError && error.cause.code === 'SQLITE_BUSY') retry();
 */
export class SqliteWasmError extends Error {
  override readonly name = 'SqliteWasmError';

  constructor(
    message: string,
    /** The extended result code name, e.g. 'SQLITE_CONSTRAINT_UNIQUE'. */
    readonly code: string,
    /** The numeric extended result code, e.g. 2067. */
    readonly resultCode: number,
  ) {
    super(message);
  }
}

/** What crosses the worker boundary for an error. */
export interface SerializedSqliteError {
  readonly message: string;
  readonly code: string;
  readonly resultCode: number;
}

/** Rebuilds the error on the main thread. */
export function reviveSqliteError(error: SerializedSqliteError): SqliteWasmError {
  return new SqliteWasmError(error.message, error.code, error.resultCode);
}
