import { entityKind } from '../entity.js';
import type { ColumnBuilderConfig, ReferenceConfig } from './column-builder.js';
import type { ColumnDefault, ColumnType } from './column-type.js';
import type { TableBase } from './table.js';

/**
 * A column of a declared table: `todos.title`. It is an expression too, so it goes straight into
 * `eq(todos.title, 'Milk')`, `select({ t: todos.title })` or `orderBy(todos.title)`.
 */
export class Column<TData, TNotNull extends boolean, THasDefault extends boolean, TTableName extends string> {
  static readonly [entityKind]: string = 'Column';
  declare readonly _: { data: TData; notNull: TNotNull; hasDefault: THasDefault; tableName: TTableName };
  readonly kind = 'column' as const;
  /** The column's name in SQL. */
  readonly name: string;
  /** The property name in TypeScript (`ownerId` for `owner_id`). */
  readonly key: string;
  readonly table: TableBase;
  readonly type: ColumnType;
  readonly notNull: boolean;
  readonly primaryKey: boolean;
  readonly unique: boolean;
  readonly uniqueName: string | undefined;
  readonly default: ColumnDefault | undefined;
  readonly references: ReferenceConfig | undefined;

  constructor(table: TableBase, key: string, config: ColumnBuilderConfig) {
    this.table = table;
    this.key = key;
    this.name = config.name ?? key;
    this.type = config.type;
    this.notNull = config.notNull;
    this.primaryKey = config.primaryKey;
    this.unique = config.unique;
    this.uniqueName = config.uniqueName;
    this.default = config.default;
    this.references = config.references;
  }

  /** Copy of this column attached to another table object (an alias of its table). */
  withTable(table: TableBase): Column<TData, TNotNull, THasDefault, TTableName> {
    const copy = Object.create(Column.prototype) as any;
    Object.assign(copy, this);
    copy.table = table;
    return copy;
  }
}

export type AnyColumn = Column<any, boolean, boolean, string>;
