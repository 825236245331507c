import type { SQL } from '../sql/sql.js';

/** The logical types every dialect knows how to store (docs/design.md section 2). */
export type ColumnTypeKind =
  | 'uuid'
  | 'text'
  | 'integer'
  | 'bigint'
  | 'real'
  | 'boolean'
  | 'timestamp'
  | 'json'
  | 'blob'
  | 'numeric'
  | 'enum'
  | 'custom';

export type DialectName = 'sqlite' | 'postgres';

/** What a custom type supplies per dialect: its SQL type, and how values cross into and out of it. */
export interface CustomTypeSpec<TData = any, TDriver = any> {
  readonly name: string;
  readonly sqlType: string | { readonly sqlite: string; readonly postgres: string };
  readonly toDriver?:
    | ((value: TData) => TDriver)
    | { readonly sqlite?: (value: TData) => TDriver; readonly postgres?: (value: TData) => TDriver };
  readonly fromDriver?:
    | ((value: TDriver) => TData)
    | { readonly sqlite?: (value: TDriver) => TData; readonly postgres?: (value: TDriver) => TData };
}

/**
 * A logical column type. It knows nothing about SQL text: each dialect resolves it to a
 * `PhysicalType` (its SQL type name plus encoder and decoder) in `src/dialect/<name>/`.
 */
export interface ColumnType {
  readonly kind: ColumnTypeKind;
  readonly enumValues?: readonly string[];
  readonly custom?: CustomTypeSpec;
}

/** How one dialect stores one logical type: SQL type name, encoder (checks too) and decoder. */
export interface PhysicalType {
  readonly sqlType: string;
  /** Turns an app value into what the driver takes; throws InvalidValueError on a wrong value. */
  readonly toDriver: (value: any) => unknown;
  /** Turns what the driver returned into the app value. Never called with null. */
  readonly fromDriver: (value: any) => unknown;
  /** True when the driver must return exact 64-bit integers for this type (bigint on SQLite). */
  readonly needsBigInt?: boolean;
}

/** A default value of a column: a constant, a SQL expression, or one generated in TypeScript. */
export type ColumnDefault =
  | { readonly kind: 'value'; readonly value: unknown }
  | { readonly kind: 'sql'; readonly sql: SQL<unknown> }
  | { readonly kind: 'random' }
  | { readonly kind: 'now' }
  | { readonly kind: 'fn'; readonly fn: () => unknown };
