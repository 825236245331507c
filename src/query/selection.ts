import { is } from '../entity.js';
import { UsageError } from '../errors.js';
import { Column } from '../schema/column.js';
import type { Simplify } from '../schema/inference.js';
import { TableBase } from '../schema/table.js';
import type { SelectField } from '../sql/nodes.js';
import { SQL } from '../sql/sql.js';

/**
 * A value a select list may hold: a column or a SQL expression. `SQL<unknown>`, not `SQL<any>`: an
 * untyped ``sql`...` `` or `fn()` in a select list takes its type from here, and should come out unknown.
 */
export type SelectionField = Column<any, any, any, any> | SQL<unknown>;
/** A select list: result keys to columns or expressions. */
export type Selection = Record<string, SelectionField>;

/** Something rows are selected from: a table or an aliased subquery. */
export interface RowSource {
  readonly $alias: string;
  readonly $inferSelect: unknown;
}

/**
 * A field of a subquery made with `.as(alias)`: an expression that remembers (in types only) which
 * subquery it reads, so that a left join on that subquery makes it nullable like a table's column.
 */
export type SubqueryField<T, TAlias extends string> = SQL<T> & { readonly _: { readonly source: TAlias } };

type FieldValue<F, TNullable extends string> =
  F extends Column<infer D, infer N, any, infer TN>
    ? (N extends true ? D : D | null) | (TN extends TNullable ? null : never)
    : F extends SQL<infer T>
      ? T | (F extends SubqueryField<any, infer TAlias> ? (TAlias extends TNullable ? null : never) : never)
      : never;

/** The row type of a select: partial (`select({...})`), one table, or one object per joined table. */
export type SelectResult<TMode, TSel, TNullable extends string> = TMode extends 'partial'
  ? Simplify<{ [K in keyof TSel]: FieldValue<TSel[K], TNullable> }>
  : TMode extends 'single'
    ? TSel[keyof TSel] extends RowSource
      ? TSel[keyof TSel]['$inferSelect']
      : never
    : Simplify<{
        [K in keyof TSel]: TSel[K] extends RowSource
          ? TSel[K]['$inferSelect'] | (K extends TNullable ? null : never)
          : never;
      }>;

/** The fields of a partial selection. */
export function partialFields(selection: Selection, context: string): SelectField[] {
  const fields: SelectField[] = [];
  for (const [key, value] of Object.entries(selection)) {
    if (value instanceof Column || is(value, Column)) {
      const column = value as Column<any, any, any, any>;
      fields.push({ key, path: [key], expr: column, decoder: column.type, nullableGroup: undefined });
    } else if (value instanceof SQL || is(value, SQL)) {
      const expr = value as SQL;
      fields.push({ key, path: [key], expr: expr.node, decoder: expr.decoder, nullableGroup: undefined });
    } else {
      throw new UsageError(`${context}: the field "${key}" is not a column or a sql expression`);
    }
  }
  if (fields.length === 0) throw new UsageError(`${context}: the select list is empty`);
  return fields;
}

/** Every column of a table (or subquery) as fields, flat or nested under the source's alias. */
export function sourceFields(
  source: TableBase | SubqueryLike,
  nested: boolean,
  nullable: boolean,
): SelectField[] {
  // The flat list of a table is the same every time: build it once, so its compiled text is cached too.
  if (!nested && is(source, TableBase)) {
    let fields = flatTableFields.get(source);
    if (!fields) {
      fields = buildSourceFields(source, false, false);
      flatTableFields.set(source, fields);
    }
    return fields;
  }
  return buildSourceFields(source, nested, nullable);
}

const flatTableFields = new WeakMap<TableBase, SelectField[]>();

function buildSourceFields(
  source: TableBase | SubqueryLike,
  nested: boolean,
  nullable: boolean,
): SelectField[] {
  const alias = source.$alias;
  if (is(source, TableBase)) {
    return source.$columnList.map((c) => ({
      key: c.key,
      path: nested ? [alias, c.key] : [c.key],
      expr: c,
      decoder: c.type,
      nullableGroup: nested && nullable ? alias : undefined,
    }));
  }
  return source.$fields.map((f) => ({
    key: f.key,
    path: nested ? [alias, f.key] : [f.key],
    expr: { kind: 'ref', table: alias, name: f.key },
    decoder: f.decoder,
    nullableGroup: nested && nullable ? alias : undefined,
  }));
}

/** What selecting from a subquery needs to know of it. */
export interface SubqueryLike {
  readonly $alias: string;
  readonly $fields: readonly SelectField[];
}
