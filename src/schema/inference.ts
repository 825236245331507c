import type { Column } from './column.js';

/** Flattens an intersection so editors show `{ a: string; b?: number }` rather than `A & B`. */
export type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The TypeScript type of a column's value as read: nullable unless the column is not null. */
export type ColumnValue<C> =
  C extends Column<infer D, infer N, any, any> ? (N extends true ? D : D | null) : never;

type RequiredInsertKeys<TColumns> = {
  [K in keyof TColumns]: TColumns[K] extends Column<any, true, false, any> ? K : never;
}[keyof TColumns];

type OptionalInsertKeys<TColumns> = Exclude<keyof TColumns, RequiredInsertKeys<TColumns>>;

/** A row as read from the table. */
export type InferSelect<TColumns> = Simplify<{ [K in keyof TColumns]: ColumnValue<TColumns[K]> }>;

/** A row as written to the table: nullable and defaulted columns are optional. */
export type InferInsert<TColumns> = Simplify<
  { [K in RequiredInsertKeys<TColumns>]: ColumnValue<TColumns[K]> } & {
    [K in OptionalInsertKeys<TColumns>]?: ColumnValue<TColumns[K]>;
  }
>;

/** The row type of a table: `InferSelectModel<typeof todos>`. */
export type InferSelectModel<T extends { $inferSelect: unknown }> = T['$inferSelect'];
/** The insert type of a table: `InferInsertModel<typeof todos>`. */
export type InferInsertModel<T extends { $inferInsert: unknown }> = T['$inferInsert'];
