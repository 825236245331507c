import type { Dialect } from '../dialect.js';
import { PostgresQueryCompiler } from './postgres-compiler.js';
import { PostgresDdlCompiler } from './postgres-ddl.js';
import { translatePostgresError } from './postgres-errors.js';
import { introspectPostgres, postgresCanonicalSql } from './postgres-introspector.js';
import { postgresMigrations } from './postgres-migrations.js';
import { postgresEncodeUntyped, postgresPhysicalType } from './postgres-types.js';

function createPostgresDialect(): Dialect {
  const dialect: Dialect = {
    name: 'postgres',
    compiler: new PostgresQueryCompiler(),
    migrations: postgresMigrations(() => dialect.ddl),
    ddl: new PostgresDdlCompiler(),
    beginTransaction: 'BEGIN',
    physicalType: postgresPhysicalType,
    encodeUntyped: postgresEncodeUntyped,
    translateError: translatePostgresError,
    introspect: introspectPostgres,
    canonicalSql: postgresCanonicalSql,
  };
  dialect.compiler.attach(dialect);
  dialect.ddl.attach(dialect);
  return dialect;
}

/** The PostgreSQL dialect, shared by the node-postgres and PGlite drivers. */
export const postgresDialect: Dialect = createPostgresDialect();
