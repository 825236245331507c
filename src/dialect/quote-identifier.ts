/**
 * A SQL identifier in double quotes, with inner quotes doubled: the same spelling on SQLite and
 * PostgreSQL. The only place identifiers are quoted; compilers cache its results.
 *
 * @example quoteIdentifier('owner_id') // '"owner_id"'
 */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
