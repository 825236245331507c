import type { ReferenceAction } from '../schema/column-builder.js';

/**
 * The live database as a dialect's introspector reads it, in one shape for every dialect. Text
 * (types, defaults) is kept as the database spells it; the dialect's `CanonicalSql` turns it and
 * the declared text into one spelling before `verifySchema` compares them.
 */
export interface LiveTable {
  readonly name: string;
  /** In the table's column order. */
  readonly columns: readonly LiveColumn[];
  /** Indexes made with CREATE INDEX; not those behind a primary key or a UNIQUE constraint. */
  readonly indexes: readonly LiveIndex[];
  /** UNIQUE constraints of the table (SQLite's `sqlite_autoindex_*`, PostgreSQL's contype 'u'). */
  readonly uniqueConstraints: readonly LiveUniqueConstraint[];
  readonly foreignKeys: readonly LiveForeignKey[];
}

export interface LiveColumn {
  readonly name: string;
  /** The SQL type as the database reports it: 'timestamp with time zone', 'INTEGER'. */
  readonly type: string;
  readonly notNull: boolean;
  /** The default's SQL text as the database reports it, or undefined when there is none. */
  readonly default: string | undefined;
  /** The column's 1-based position in the primary key, 0 when it is not part of it. */
  readonly primaryKeyPosition: number;
}

export interface LiveIndex {
  readonly name: string;
  /** Key columns in order; an expression is given as its SQL text in parentheses. */
  readonly columns: readonly string[];
  readonly unique: boolean;
  /** True when the index has a WHERE clause. */
  readonly partial: boolean;
}

export interface LiveUniqueConstraint {
  /** The constraint's name, when the database keeps one (PostgreSQL does, SQLite does not). */
  readonly name: string | undefined;
  readonly columns: readonly string[];
}

export interface LiveForeignKey {
  /** The constraint's name, when the database keeps one (PostgreSQL does, SQLite does not). */
  readonly name: string | undefined;
  readonly columns: readonly string[];
  readonly targetTable: string;
  readonly targetColumns: readonly string[];
  readonly onDelete: ReferenceAction;
  readonly onUpdate: ReferenceAction;
}

/**
 * How a dialect spells types and defaults in one canonical way, so that what the schema would
 * write (`TIMESTAMPTZ`, `FALSE`, `'[]'`) and what the database reports (`timestamp with time
 * zone`, `false`, `'[]'::jsonb`) compare equal as text when they mean the same.
 */
export interface CanonicalSql {
  type(sqlType: string): string;
  /** Undefined for no default; `DEFAULT NULL` counts as none. */
  default(sql: string | undefined): string | undefined;
}

/** A `LiveTable` being filled in by an introspector. */
export interface LiveTableDraft {
  readonly name: string;
  readonly columns: LiveColumn[];
  readonly indexes: LiveIndex[];
  readonly uniqueConstraints: LiveUniqueConstraint[];
  readonly foreignKeys: LiveForeignKey[];
}

/** Collects an introspector's rows into tables, each made the first time its name comes up. */
export function liveTableDrafts(): {
  table(name: string): LiveTableDraft;
  get(name: string): LiveTableDraft | undefined;
  list(): LiveTableDraft[];
} {
  const tables = new Map<string, LiveTableDraft>();
  return {
    table(name) {
      let table = tables.get(name);
      if (!table) {
        table = { name, columns: [], indexes: [], uniqueConstraints: [], foreignKeys: [] };
        tables.set(name, table);
      }
      return table;
    },
    get: (name) => tables.get(name),
    list: () => [...tables.values()],
  };
}
