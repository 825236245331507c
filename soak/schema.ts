/**
 * The soak's schema, as an ordinary app's would be: `owners` (a unique name, NOT NULL columns
 * without defaults, a column named like a SQL keyword, json, a timestamp) and `items` (a foreign
 * key to owners with ON DELETE CASCADE, a bigint beyond 2^53, a blob, json, a nullable timestamp).
 *
 * Variants (`--schema`): `plain` leaves out the columns named after identifiers the sync engine
 * itself uses; `full` adds `owners.n` (the name of the server capture triggers' transition
 * table); `names` adds `items.origin`, `items.stamp` and `items.mutation` too (the capture
 * triggers' plpgsql variables).
 */
import {
  bigint,
  blob,
  type ColumnBuilder,
  integer,
  json,
  type Schema,
  schema,
  table,
  text,
  timestamp,
  uuid,
} from '../src/index.js';
import type { AnyTable } from '../src/schema/table.js';

/**
 * Which columns the soak's tables have (see the module comment).
 *
 * @example
 *   const variant: SchemaVariant = 'plain';
 */
export type SchemaVariant = 'plain' | 'full' | 'names';

/**
 * Every variant, for option checking.
 *
 * @example
 *   if (!SCHEMA_VARIANTS.includes(value)) throw new Error('unknown variant');
 */
export const SCHEMA_VARIANTS: readonly SchemaVariant[] = ['plain', 'full', 'names'];

/**
 * The soak's tables and schema for one variant, built anew (each process builds its own).
 *
 * @example
 *   const { schema, owners, items } = soakSchema('full');
 *   await openDatabase(schema, sqlite({ path }));
 */
export interface SoakSchema {
  readonly variant: SchemaVariant;
  readonly schema: Schema;
  readonly owners: AnyTable;
  readonly items: AnyTable;
  /** Parents first: the order rows are dumped and compared in. */
  readonly tables: readonly AnyTable[];
}

/**
 * Builds the soak's schema for `variant`.
 *
 * @example
 *   const s = soakSchema('plain');
 *   s.tables.map((t) => t.$name); // ['owners', 'items']
 */
export function soakSchema(variant: SchemaVariant): SoakSchema {
  // Variant columns are added as plain records: the table's static type does not matter here.
  const nColumn: Record<string, ColumnBuilder<any, any, any, any>> = variant === 'plain'
    ? {}
    : { n: integer('n').notNull() };
  const nameColumns: Record<string, ColumnBuilder<any, any, any, any>> = variant === 'names'
    ? { origin: text('origin'), stamp: text('stamp'), mutation: integer('mutation') }
    : {};
  const owners = table('owners', {
    id: uuid().primaryKey(),
    name: text().notNull().unique(),
    order: integer('order').notNull(),
    ...nColumn,
    createdAt: timestamp('created_at').notNull(),
    meta: json<Record<string, unknown>>().notNull(),
  });
  const items = table('items', {
    id: uuid().primaryKey(),
    ownerId: uuid('owner_id')
      .notNull()
      .references(() => owners.id, { onDelete: 'cascade' }),
    title: text().notNull(),
    qty: bigint().notNull(),
    payload: blob(),
    dueAt: timestamp('due_at'),
    tags: json<unknown[]>().notNull(),
    note: text(),
    ...nameColumns,
  });
  return {
    variant,
    schema: schema({ owners, items }, { version: 1 }),
    owners,
    items,
    tables: [owners, items],
  };
}
