import { entityKind } from './entity.js';
import type { SchemaDifference } from './migrations/schema-difference.js';

/**
 * Base class of every error syncline throws. Database errors keep the driver's error as `cause`.
 *
 * @example
 *   try { await db.insert(todos).values(row); } catch (e) { if (e instanceof SynclineError) ... }
 */
export class SynclineError extends Error {
  static readonly [entityKind]: string = 'SynclineError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The kinds of constraint a `ConstraintError` reports. */
export type ConstraintKind = 'unique' | 'primaryKey' | 'foreignKey' | 'check' | 'notNull';

/**
 * A write broke a constraint: unique, primary key, foreign key, check or not-null. `table`,
 * `column` and `constraint` are filled where the database names them.
 *
 * @example
 *   catch (e) { if (e instanceof ConstraintError && e.kind === 'unique') showTaken(e.column); }
 */
export class ConstraintError extends SynclineError {
  static override readonly [entityKind]: string = 'ConstraintError';
  readonly kind: ConstraintKind;
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly constraint: string | undefined;
  constructor(
    info: { kind: ConstraintKind; table?: string; column?: string; constraint?: string; detail?: string },
    options?: { cause?: unknown },
  ) {
    const where = [info.table, info.column].filter(Boolean).join('.');
    const label = {
      unique: 'unique',
      primaryKey: 'primary key',
      foreignKey: 'foreign key',
      check: 'check',
      notNull: 'not-null',
    }[info.kind];
    const named = info.constraint ? ` "${info.constraint}"` : '';
    super(
      `${label} constraint${named} failed${where ? ` on ${where}` : ''}${info.detail ? `: ${info.detail}` : ''}`,
      options,
    );
    this.kind = info.kind;
    this.table = info.table;
    this.column = info.column;
    this.constraint = info.constraint;
  }
}

/** Any other error the database reported (a syntax error, a missing table, a lost connection). */
export class DatabaseError extends SynclineError {
  static override readonly [entityKind]: string = 'DatabaseError';
  /** The database's own error code (`SQLITE_ERROR`, `42P01`, ...), when it gave one. */
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The API was used in a way that cannot work: an unknown column, an update without a where clause,
 * a query on a finished transaction. Thrown before anything reaches the database.
 */
export class UsageError extends SynclineError {
  static override readonly [entityKind]: string = 'UsageError';
}

/** A value does not fit its column's type (a string for an integer, an invalid Date, ...). */
export class InvalidValueError extends UsageError {
  static override readonly [entityKind]: string = 'InvalidValueError';
}

/** A query ran on a transaction handle after its transaction had committed or rolled back. */
export class TransactionClosedError extends UsageError {
  static override readonly [entityKind]: string = 'TransactionClosedError';
}

/** A schema migration could not run, or the database is newer than the app. */
export class MigrationError extends SynclineError {
  static override readonly [entityKind]: string = 'MigrationError';
}

/** The live database differs from the declared schema; `differences` lists each way it does. */
export class SchemaMismatchError extends SynclineError {
  static override readonly [entityKind]: string = 'SchemaMismatchError';
  readonly differences: readonly SchemaDifference[];
  constructor(message: string, options?: { cause?: unknown; differences?: readonly SchemaDifference[] }) {
    super(message, options);
    this.differences = options?.differences ?? [];
  }
}

/** A sync message broke the protocol (malformed, unknown type, wrong version). */
export class SyncProtocolError extends SynclineError {
  static override readonly [entityKind]: string = 'SyncProtocolError';
}

/** A sync connection could not be authenticated or was refused by the rules. */
export class AuthError extends SynclineError {
  static override readonly [entityKind]: string = 'AuthError';
}
