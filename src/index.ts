/**
 * syncline: one TypeScript schema for SQLite on clients and PostgreSQL on the server, typed
 * queries that compile to both dialects, and (in later modules) live queries and sync.
 *
 * Drivers live in their own entry points: `syncline/sqlite`, `syncline/postgres`, `syncline/pglite`.
 */
export { Database, type OpenDatabaseOptions, openDatabase } from './database/database.js';
export type { Driver, DriverQuery, DriverResult, DriverSession } from './database/driver.js';
export { QueryScope } from './database/query-scope.js';
export { SingleConnection } from './database/single-connection.js';
export { Transaction } from './database/transaction.js';
export type { Dialect } from './dialect/dialect.js';
export { postgresDialect } from './dialect/postgres/postgres-dialect.js';
export type { CompiledQuery } from './dialect/query-compiler.js';
export { sqliteDialect } from './dialect/sqlite/sqlite-dialect.js';
export { entityKind, is } from './entity.js';
export {
  AuthError,
  ConstraintError,
  type ConstraintKind,
  DatabaseError,
  InvalidValueError,
  MigrationError,
  SchemaMismatchError,
  SynclineError,
  SyncProtocolError,
  TransactionClosedError,
  UsageError,
} from './errors.js';
export { LiveQuery } from './live/live-query.js';
export type {
  CanonicalSql,
  LiveColumn,
  LiveForeignKey,
  LiveIndex,
  LiveTable,
  LiveUniqueConstraint,
} from './migrations/live-schema.js';
export { Migrator } from './migrations/migrator.js';
export type { MigrationOptions, MigrationProgress, OpenDetails } from './migrations/run-migrations.js';
export type { SchemaDifference, SchemaDifferenceKind } from './migrations/schema-difference.js';
export { type SchemaFromSnapshotOptions, schemaFromSnapshot } from './migrations/schema-from-snapshot.js';
export {
  type CheckSnapshot,
  type ColumnSnapshot,
  type DefaultSnapshot,
  type DialectText,
  type ForeignKeySnapshot,
  formatSchemaSnapshot,
  type IndexSnapshot,
  type SchemaSnapshot,
  schemaSnapshot,
  type TableSnapshot,
} from './migrations/snapshot.js';
export { assertSchema, verifySchema } from './migrations/verify-schema.js';
export { DeleteQuery } from './query/delete.js';
export { InsertBuilder, InsertQuery, type InsertRow } from './query/insert.js';
export { PreparedQuery, type WriteResult } from './query/run-compiled.js';
export { type AliasedSubquery, SelectBuilder, SelectQuery, Subquery } from './query/select.js';
export type { Selection, SelectResult } from './query/selection.js';
export { UpdateBuilder, UpdateQuery, type UpdateSet } from './query/update.js';
export { Column } from './schema/column.js';
export { ColumnBuilder, type ReferenceAction } from './schema/column-builder.js';
export type {
  ColumnType,
  ColumnTypeKind,
  CustomTypeSpec,
  DialectName,
  PhysicalType,
} from './schema/column-type.js';
export {
  bigint,
  blob,
  boolean,
  customType,
  enumOf,
  integer,
  json,
  numeric,
  real,
  text,
  timestamp,
  uuid,
} from './schema/columns.js';
export type { InferInsert, InferInsertModel, InferSelect, InferSelectModel } from './schema/inference.js';
export { Schema, type SchemaOptions, schema } from './schema/schema.js';
export {
  type AnyTable,
  alias,
  check,
  foreignKey,
  index,
  localTable,
  primaryKey,
  type Table,
  TableBase,
  table,
  uniqueIndex,
} from './schema/table.js';
export {
  and,
  between,
  eq,
  excluded,
  exists,
  gt,
  gte,
  ilike,
  inArray,
  isNotNull,
  isNull,
  like,
  lt,
  lte,
  ne,
  not,
  notBetween,
  notExists,
  notIlike,
  notInArray,
  notLike,
  or,
} from './sql/expressions.js';
export { asc, avg, count, countDistinct, desc, fn, max, min, OrderBy, sum } from './sql/functions.js';
export { type Expr, Placeholder, SQL, sql } from './sql/sql.js';
