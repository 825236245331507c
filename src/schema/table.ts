import { entityKind } from '../entity.js';
import { UsageError } from '../errors.js';
import type { SQL } from '../sql/sql.js';
import { Column } from './column.js';
import type { ColumnBuilder, ReferenceAction } from './column-builder.js';
import type { InferInsert, InferSelect } from './inference.js';

/**
 * The column map `table()` takes. Its data type is `unknown`, not `any`: a generic builder called
 * without a type argument (`json()`) infers its type from here, and must come out `unknown`.
 */
export type ColumnBuilders = Record<string, ColumnBuilder<unknown, boolean, boolean, string>>;

/** The columns a table gets from its builders, each typed with its table's name. */
export type BuildColumns<TName extends string, TBuilders extends ColumnBuilders> = {
  [K in keyof TBuilders]: TBuilders[K] extends ColumnBuilder<infer D, infer N, infer H, any>
    ? Column<D, N, H, TName>
    : never;
};

export interface IndexDefinition {
  readonly type: 'index';
  readonly name: string;
  readonly unique: boolean;
  readonly columns: readonly Column<any, any, any, any>[];
  readonly where: SQL<unknown> | undefined;
}

export interface CheckDefinition {
  readonly type: 'check';
  readonly name: string;
  readonly expression: SQL<unknown>;
}

export interface PrimaryKeyDefinition {
  readonly type: 'primaryKey';
  readonly name: string | undefined;
  readonly columns: readonly Column<any, any, any, any>[];
}

export interface ForeignKeyDefinition {
  readonly type: 'foreignKey';
  readonly name: string | undefined;
  readonly columns: readonly Column<any, any, any, any>[];
  readonly target: () => readonly Column<any, any, any, any>[];
  readonly onDelete: ReferenceAction | undefined;
  readonly onUpdate: ReferenceAction | undefined;
}

export type TableExtra =
  | IndexDefinition
  | CheckDefinition
  | PrimaryKeyDefinition
  | ForeignKeyDefinition
  | IndexBuilder;

/**
 * The runtime part of every table: its SQL name, its columns, and its table-level constraints.
 * Tables are what `db.select().from(...)`, `db.insert(...)` and `schema({...})` take.
 */
export class TableBase<
  TName extends string = string,
  TColumns extends Record<string, any> = Record<string, any>,
  TAlias extends string = TName,
> {
  static readonly [entityKind]: string = 'Table';
  declare readonly $inferSelect: InferSelect<TColumns>;
  declare readonly $inferInsert: InferInsert<TColumns>;
  /** The table's name in SQL. */
  readonly $name: TName;
  /** The name it is referred to by in a query: its own name, or an alias from `alias()`. */
  readonly $alias: TAlias;
  readonly $columns: TColumns;
  /** Columns in declaration order. */
  readonly $columnList: readonly Column<any, any, any, any>[];
  readonly $indexes: readonly IndexDefinition[];
  readonly $checks: readonly CheckDefinition[];
  readonly $primaryKey: PrimaryKeyDefinition | undefined;
  readonly $foreignKeys: readonly ForeignKeyDefinition[];
  /** Local tables stay on the client and are never synced (docs/design.md section 4). */
  readonly $local: boolean;
  /** The table this one aliases, or itself. */
  readonly $base: TableBase;
  readonly $columnsBySqlName: Map<string, Column<any, any, any, any>>;

  constructor(
    name: TName,
    alias: TAlias,
    columns: TColumns,
    extras: {
      indexes: IndexDefinition[];
      checks: CheckDefinition[];
      primaryKey: PrimaryKeyDefinition | undefined;
      foreignKeys: ForeignKeyDefinition[];
      local: boolean;
      base?: TableBase;
    },
  ) {
    this.$name = name;
    this.$alias = alias;
    this.$columns = columns;
    this.$columnList = Object.values(columns);
    this.$indexes = extras.indexes;
    this.$checks = extras.checks;
    this.$primaryKey = extras.primaryKey;
    this.$foreignKeys = extras.foreignKeys;
    this.$local = extras.local;
    this.$base = extras.base ?? this;
    this.$columnsBySqlName = new Map(this.$columnList.map((c) => [c.name, c]));
  }

  /** The primary key columns: the composite key if declared, else the column marked primaryKey(). */
  get $primaryKeyColumns(): readonly Column<any, any, any, any>[] {
    if (this.$primaryKey) return this.$primaryKey.columns;
    return this.$columnList.filter((c) => c.primaryKey);
  }

  $columnBySqlName(name: string): Column<any, any, any, any> | undefined {
    return this.$columnsBySqlName.get(name);
  }
}

/** A declared table: its runtime part plus one property per column (`todos.title`). */
export type Table<
  TName extends string = string,
  TColumns extends Record<string, any> = Record<string, any>,
  TAlias extends string = TName,
> = TableBase<TName, TColumns, TAlias> & TColumns;

/**
 * Any table, for parameters that take one (`insert<T extends AnyTable>`). Only the runtime part is
 * required: a table's column properties sit beside `$name` and `$columns`, so an index signature
 * over them (`Table<string, Record<string, Column>>`) would match no declared table.
 */
export type AnyTable = TableBase<string, Record<string, Column<any, any, any, any>>, string>;

/** The columns of `alias(table, name)`: the same columns, typed as belonging to the alias. */
export type AliasedColumns<TColumns, TAlias extends string> = {
  [K in keyof TColumns]: TColumns[K] extends Column<infer D, infer N, infer H, any>
    ? Column<D, N, H, TAlias>
    : TColumns[K];
};

/** What `alias(table, name)` returns: the table under the name `name` (the SQL name stays the same). */
export type AliasedTable<T extends AnyTable, TAlias extends string> = Table<
  T['$name'],
  AliasedColumns<T['$columns'], TAlias>,
  TAlias
>;

function isIndexBuilder(extra: TableExtra): extra is IndexBuilder {
  return extra instanceof IndexBuilder;
}

function buildTable<TName extends string, TBuilders extends ColumnBuilders>(
  name: TName,
  builders: TBuilders,
  extrasFn: ((t: BuildColumns<TName, TBuilders>) => TableExtra[]) | undefined,
  local: boolean,
): Table<TName, BuildColumns<TName, TBuilders>> {
  if (!name) throw new UsageError('table() needs a name');
  const columns: Record<string, Column<any, any, any, any>> = {};
  const table = new TableBase(name, name, columns as BuildColumns<TName, TBuilders>, {
    indexes: [],
    checks: [],
    primaryKey: undefined,
    foreignKeys: [],
    local,
  });
  const seen = new Set<string>();
  for (const [key, builder] of Object.entries(builders)) {
    if (key in table)
      throw new UsageError(`table "${name}": the column key "${key}" is reserved, pick another key`);
    const column = new Column(table, key, builder.config);
    if (seen.has(column.name))
      throw new UsageError(`table "${name}" declares the column "${column.name}" twice`);
    seen.add(column.name);
    columns[key] = column;
  }
  // The column map was filled after construction, so the derived lists are rebuilt here.
  (table as any).$columnList = Object.values(columns);
  (table as any).$columnsBySqlName = new Map(Object.values(columns).map((c) => [c.name, c]));
  Object.assign(table, columns);

  const extras = extrasFn ? extrasFn(columns as BuildColumns<TName, TBuilders>) : [];
  const indexes: IndexDefinition[] = [];
  const checks: CheckDefinition[] = [];
  const foreignKeys: ForeignKeyDefinition[] = [];
  let primaryKey: PrimaryKeyDefinition | undefined;
  for (const raw of extras) {
    const extra = isIndexBuilder(raw) ? raw.definition() : raw;
    if (extra.type === 'index') indexes.push(extra);
    else if (extra.type === 'check') checks.push(extra);
    else if (extra.type === 'foreignKey') foreignKeys.push(extra);
    else {
      if (primaryKey) throw new UsageError(`table "${name}" declares two primary keys`);
      primaryKey = extra;
    }
  }
  if (primaryKey && table.$columnList.some((c) => c.primaryKey)) {
    throw new UsageError(
      `table "${name}" has both a composite primaryKey() and a column marked .primaryKey(); keep one of them`,
    );
  }
  Object.assign(table, {
    $indexes: indexes,
    $checks: checks,
    $foreignKeys: foreignKeys,
    $primaryKey: primaryKey,
  });
  return table as Table<TName, BuildColumns<TName, TBuilders>>;
}

/**
 * Declares a table: its SQL name, its columns, and optional indexes and constraints. One table
 * works on every dialect.
 *
 * @example
 *   const todos = table('todos', {
 *     id: uuid().primaryKey().defaultRandom(),
 *     title: text().notNull(),
 *   }, (t) => [index('todos_title_idx').on(t.title)]);
 */
export function table<TName extends string, TBuilders extends ColumnBuilders>(
  name: TName,
  columns: TBuilders,
  extras?: (t: BuildColumns<TName, TBuilders>) => TableExtra[],
): Table<TName, BuildColumns<TName, TBuilders>> {
  return buildTable(name, columns, extras, false);
}

/**
 * Declares a table that stays on the client: it is created like any other, but the sync engine
 * never captures or sends its rows.
 *
 * @example
 *   const drafts = localTable('drafts', { id: uuid().primaryKey(), body: text() });
 */
export function localTable<TName extends string, TBuilders extends ColumnBuilders>(
  name: TName,
  columns: TBuilders,
  extras?: (t: BuildColumns<TName, TBuilders>) => TableExtra[],
): Table<TName, BuildColumns<TName, TBuilders>> {
  return buildTable(name, columns, extras, true);
}

/**
 * The same table under another name, for self-joins: `const parent = alias(nodes, 'parent')`.
 */
export function alias<T extends AnyTable, TAlias extends string>(
  source: T,
  aliasName: TAlias,
): AliasedTable<T, TAlias> {
  const base = source.$base;
  const columns: Record<string, Column<any, any, any, any>> = {};
  const aliased = new TableBase(base.$name, aliasName, columns, {
    indexes: [...base.$indexes],
    checks: [...base.$checks],
    primaryKey: base.$primaryKey,
    foreignKeys: [...base.$foreignKeys],
    local: base.$local,
    base,
  });
  for (const column of base.$columnList) columns[column.key] = column.withTable(aliased);
  (aliased as any).$columnList = Object.values(columns);
  (aliased as any).$columnsBySqlName = new Map(Object.values(columns).map((c) => [c.name, c]));
  Object.assign(aliased, columns);
  return aliased as unknown as AliasedTable<T, TAlias>;
}

/** Builds an index: `index('todos_list_idx').on(t.listId)`, optionally partial with `.where(sql)`. */
export class IndexBuilder {
  static readonly [entityKind]: string = 'IndexBuilder';
  constructor(
    private readonly name: string,
    private readonly isUnique: boolean,
    private readonly cols: readonly Column<any, any, any, any>[] = [],
    private readonly predicate: SQL<unknown> | undefined = undefined,
  ) {}

  on(...columns: Column<any, any, any, any>[]): IndexBuilder {
    if (columns.length === 0) throw new UsageError(`index "${this.name}" needs at least one column`);
    return new IndexBuilder(this.name, this.isUnique, columns, this.predicate);
  }

  where(predicate: SQL<unknown>): IndexBuilder {
    return new IndexBuilder(this.name, this.isUnique, this.cols, predicate);
  }

  definition(): IndexDefinition {
    if (this.cols.length === 0) throw new UsageError(`index "${this.name}" has no columns: call .on(...)`);
    return {
      type: 'index',
      name: this.name,
      unique: this.isUnique,
      columns: this.cols,
      where: this.predicate,
    };
  }
}

/** An index on one or more columns. @example index('todos_list_idx').on(t.listId) */
export function index(name: string): IndexBuilder {
  return new IndexBuilder(name, false);
}

/** A unique index. @example uniqueIndex('users_email_idx').on(t.email) */
export function uniqueIndex(name: string): IndexBuilder {
  return new IndexBuilder(name, true);
}

/** A check constraint. @example check('price_positive', sql`${t.price} > 0`) */
export function check(name: string, expression: SQL<unknown>): CheckDefinition {
  return { type: 'check', name, expression };
}

/** A composite primary key. @example primaryKey({ columns: [t.listId, t.userId] }) */
export function primaryKey(config: {
  name?: string;
  columns: Column<any, any, any, any>[];
}): PrimaryKeyDefinition {
  if (config.columns.length === 0) throw new UsageError('primaryKey() needs at least one column');
  return { type: 'primaryKey', name: config.name, columns: config.columns };
}

/** A (possibly composite) foreign key declared at table level. */
export function foreignKey(config: {
  name?: string;
  columns: Column<any, any, any, any>[];
  foreignColumns: () => Column<any, any, any, any>[];
  onDelete?: ReferenceAction;
  onUpdate?: ReferenceAction;
}): ForeignKeyDefinition {
  return {
    type: 'foreignKey',
    name: config.name,
    columns: config.columns,
    target: config.foreignColumns,
    onDelete: config.onDelete,
    onUpdate: config.onUpdate,
  };
}
