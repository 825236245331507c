import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Driver } from '../database/driver.js';
import { UsageError } from '../errors.js';

/**
 * A `--database` value as it may be shown: a URL's password replaced by `***`.
 *
 * @example
 *   shownDatabase('postgres://app:secret@db/app'); // 'postgres://app:***@db/app'
 */
export function shownDatabase(database: string): string {
  return database.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
}

/** `scheme://…`: a value meant as a URL, not a folder. */
const URL_LIKE = /^([a-z][a-z0-9+.-]*):\/\//i;

/**
 * The driver for a `--database` value: a `postgres://` (or `postgresql://`) URL opens the server
 * with pg, anything else is a folder for an embedded PGlite database (created if missing). A value
 * that looks like a URL of another scheme (`postgress://`, a typo) or that is not a valid URL is
 * refused with a message naming the option, the value and what would be valid, rather than taken
 * for a folder. Drivers load on demand: pg and PGlite are optional peers.
 *
 * @example
 *   const driver = await databaseDriver('postgres://localhost/app', process.cwd());
 */
export async function databaseDriver(database: string, cwd: string): Promise<Driver> {
  const scheme = URL_LIKE.exec(database)?.[1];
  if (scheme !== undefined) {
    if (!/^postgres(ql)?$/i.test(scheme)) {
      throw new UsageError(
        `--database "${shownDatabase(database)}": "${scheme}://" is not a database URL syncline opens; give a postgres:// (or postgresql://) URL, such as postgres://user:password@localhost:5432/app, or a folder for an embedded PGlite database, such as ./data`,
      );
    }
    try {
      new URL(database);
    } catch {
      throw new UsageError(
        `--database "${shownDatabase(database)}" is not a valid URL; expected postgres://user:password@host:port/database (percent-encode special characters in the password)`,
      );
    }
    const { postgres } = await import('../drivers/node-postgres/index.js');
    return postgres({ connectionString: database });
  }
  const dataDir = resolve(cwd, database);
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (error) {
    throw new UsageError(
      `--database "${database}": cannot create the PGlite folder ${dataDir}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const { pglite } = await import('../drivers/pglite/index.js');
  return pglite({ dataDir });
}

/** Codes of a database that could not be reached or entered, from Node's sockets and PostgreSQL. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  '28P01', // password authentication failed
  '28000', // no such role / no pg_hba.conf entry
  '3D000', // the database does not exist
]);

function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (
    let e = error as { code?: unknown; cause?: unknown } | undefined, i = 0;
    e && i < 5;
    e = e.cause as typeof e, i++
  ) {
    if (typeof e.code === 'string') codes.push(e.code);
  }
  return codes;
}

/**
 * An error met while opening the `--database`, made to say so when the database could not be
 * reached or entered (refused connection, unknown host, bad password, missing database): the
 * message names the option and the value (password hidden). Other errors come back as they are.
 *
 * @example
 *   try { await createSyncServer({ ... }); } catch (e) { throw databaseOpenError(e, options.database); }
 */
export function databaseOpenError(error: unknown, database: string): unknown {
  if (!codesOf(error).some((code) => UNREACHABLE.has(code))) return error;
  return new UsageError(
    `could not open the database given by --database "${shownDatabase(database)}": ${(error as Error).message}; check that PostgreSQL is running there and that the URL's user, password and database are right`,
    { cause: error },
  );
}
