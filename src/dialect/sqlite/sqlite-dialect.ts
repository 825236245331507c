import type { Dialect } from '../dialect.js';
import { SqliteQueryCompiler } from './sqlite-compiler.js';
import { SqliteDdlCompiler } from './sqlite-ddl.js';
import { translateSqliteError } from './sqlite-errors.js';
import { introspectSqlite, sqliteCanonicalSql } from './sqlite-introspector.js';
import { sqliteMigrations } from './sqlite-migrations.js';
import { sqliteEncodeUntyped, sqlitePhysicalType } from './sqlite-types.js';

function createSqliteDialect(): Dialect {
  const dialect: Dialect = {
    name: 'sqlite',
    compiler: new SqliteQueryCompiler(),
    migrations: sqliteMigrations(() => dialect.ddl),
    ddl: new SqliteDdlCompiler(),
    // IMMEDIATE takes the write lock up front, so two processes never deadlock upgrading a read lock.
    beginTransaction: 'BEGIN IMMEDIATE',
    physicalType: sqlitePhysicalType,
    encodeUntyped: sqliteEncodeUntyped,
    translateError: translateSqliteError,
    introspect: introspectSqlite,
    canonicalSql: sqliteCanonicalSql,
  };
  dialect.compiler.attach(dialect);
  dialect.ddl.attach(dialect);
  return dialect;
}

/** The SQLite dialect, shared by the better-sqlite3 and SQLite WASM drivers. */
export const sqliteDialect: Dialect = createSqliteDialect();
