import { entityKind } from '../entity.js';
import type { SQL } from '../sql/sql.js';
import type { Column } from './column.js';
import type { ColumnDefault, ColumnType } from './column-type.js';

/** What happens to referencing rows when the referenced row is deleted or its key updated. */
export type ReferenceAction = 'cascade' | 'restrict' | 'no action' | 'set null' | 'set default';

export interface ReferenceConfig {
  readonly target: () => Column<any, any, any, any>;
  readonly onDelete?: ReferenceAction;
  readonly onUpdate?: ReferenceAction;
}

/** Everything a builder has collected; a `table()` turns it into a `Column`. */
export interface ColumnBuilderConfig {
  readonly name: string | undefined;
  readonly type: ColumnType;
  readonly notNull: boolean;
  readonly primaryKey: boolean;
  readonly unique: boolean;
  readonly uniqueName: string | undefined;
  readonly default: ColumnDefault | undefined;
  readonly references: ReferenceConfig | undefined;
}

/**
 * A column being declared: `text('owner_id').notNull()`. Each modifier returns a new builder, and
 * the type parameters follow along so `$inferSelect` / `$inferInsert` come out right.
 *
 * @example
 *   const todos = table('todos', { title: text().notNull(), done: boolean().notNull().default(false) });
 */
export class ColumnBuilder<
  TData,
  TNotNull extends boolean = false,
  THasDefault extends boolean = false,
  TKind extends string = string,
> {
  static readonly [entityKind]: string = 'ColumnBuilder';
  declare readonly _: { data: TData; notNull: TNotNull; hasDefault: THasDefault; kind: TKind };
  readonly config: ColumnBuilderConfig;

  constructor(config: ColumnBuilderConfig) {
    this.config = config;
  }

  private with(patch: Partial<ColumnBuilderConfig>): any {
    return new ColumnBuilder({ ...this.config, ...patch });
  }

  /** The column rejects NULL. */
  notNull(): ColumnBuilder<TData, true, THasDefault, TKind> {
    return this.with({ notNull: true });
  }

  /** The column is the table's primary key (and so not null). Use `primaryKey()` in the table's extras for a composite key. */
  primaryKey(): ColumnBuilder<TData, true, THasDefault, TKind> {
    return this.with({ primaryKey: true, notNull: true });
  }

  /** Values of this column are unique across the table. */
  unique(name?: string): ColumnBuilder<TData, TNotNull, THasDefault, TKind> {
    return this.with({ unique: true, uniqueName: name });
  }

  /** A default used when an insert leaves the column out: a constant or a `sql` expression. */
  default(value: TData | SQL<unknown>): ColumnBuilder<TData, TNotNull, true, TKind> {
    const isSql =
      typeof value === 'object' && value !== null && (value as any).constructor?.[entityKind] === 'SQL';
    return this.with({
      default: isSql ? { kind: 'sql', sql: value as SQL<unknown> } : { kind: 'value', value },
    });
  }

  /** A default computed in TypeScript for every inserted row that leaves the column out. */
  $defaultFn(fn: () => TData): ColumnBuilder<TData, TNotNull, true, TKind> {
    return this.with({ default: { kind: 'fn', fn } });
  }

  /**
   * A random UUID as the column's SQL default: `gen_random_uuid()` on PostgreSQL, one built from
   * `randomblob()` on SQLite (so rows inserted with raw SQL get one too).
   */
  defaultRandom(
    this: ColumnBuilder<string, boolean, boolean, 'uuid'>,
  ): ColumnBuilder<TData, TNotNull, true, TKind> {
    return (this as any).with({ default: { kind: 'random' } });
  }

  /** The current time: `now()` on PostgreSQL, the current time in ms on SQLite. */
  defaultNow(
    this: ColumnBuilder<Date, boolean, boolean, 'timestamp'>,
  ): ColumnBuilder<TData, TNotNull, true, TKind> {
    return (this as any).with({ default: { kind: 'now' } });
  }

  /** A foreign key to another table's column. */
  references(
    target: () => Column<any, any, any, any>,
    actions: { onDelete?: ReferenceAction; onUpdate?: ReferenceAction } = {},
  ): ColumnBuilder<TData, TNotNull, THasDefault, TKind> {
    return this.with({ references: { target, ...actions } });
  }

  /** Narrows the TypeScript type of the column's values (a branded id, a union of strings). */
  $type<T extends TData>(): ColumnBuilder<T, TNotNull, THasDefault, TKind> {
    return this as any;
  }
}

export function columnBuilder<TData, TKind extends string>(
  type: ColumnType,
  name: string | undefined,
): ColumnBuilder<TData, false, false, TKind> {
  return new ColumnBuilder({
    name,
    type,
    notNull: false,
    primaryKey: false,
    unique: false,
    uniqueName: undefined,
    default: undefined,
    references: undefined,
  });
}
