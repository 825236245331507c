import { UsageError } from '../errors.js';
import type { Column } from '../schema/column.js';
import { ColumnBuilder } from '../schema/column-builder.js';
import type { ColumnDefault, DialectName } from '../schema/column-type.js';
import {
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
} from '../schema/columns.js';
import { type Schema, schema } from '../schema/schema.js';
import {
  type AnyTable,
  type ColumnBuilders,
  check,
  foreignKey,
  index,
  localTable,
  primaryKey,
  type TableExtra,
  table,
  uniqueIndex,
} from '../schema/table.js';
import type { RawNode } from '../sql/nodes.js';
import { SQL, sql } from '../sql/sql.js';
import {
  type ColumnSnapshot,
  type DialectText,
  rememberSnapshotText,
  type SchemaSnapshot,
  SNAPSHOT_FORMAT,
} from './snapshot.js';
import { decodeSnapshotValue } from './snapshot-value.js';

/** The stand-in a rebuilt custom column has for its default; its encoder turns it into the stored value. */
const rebuiltDefault = Symbol('syncline:snapshotDefault');

export interface SchemaFromSnapshotOptions {
  /**
   * The dialect the rebuilt schema will run on. Needed only when a check, partial index condition
   * or SQL default compiles to different text per dialect; without it such an expression throws
   * when it is compiled.
   */
  dialect?: DialectName;
}

function rebuiltSql(texts: DialectText, dialect: DialectName | undefined, what: string): SQL<unknown> {
  let expression: SQL<unknown>;
  if (dialect) expression = sql.raw(texts[dialect]);
  else if (texts.sqlite === texts.postgres) expression = sql.raw(texts.sqlite);
  else {
    // The text depends on the dialect, and nothing here says which one: fail when it is compiled.
    const node = {
      kind: 'raw',
      get chunks(): never {
        throw new UsageError(
          `${what} is written differently on SQLite and PostgreSQL: rebuild the schema with schemaFromSnapshot(snapshot, { dialect })`,
        );
      },
    } as RawNode;
    expression = new SQL(node);
  }
  rememberSnapshotText(expression, texts);
  return expression;
}

function typedBuilder(c: ColumnSnapshot, where: string): ColumnBuilder<any, any, any, any> {
  switch (c.type) {
    case 'uuid':
      return uuid(c.name);
    case 'text':
      return text(c.name);
    case 'integer':
      return integer(c.name);
    case 'bigint':
      return bigint(c.name);
    case 'real':
      return real(c.name);
    case 'boolean':
      return boolean(c.name);
    case 'timestamp':
      return timestamp(c.name);
    case 'json':
      return json(c.name);
    case 'blob':
      return blob(c.name);
    case 'numeric':
      return numeric(c.name);
    case 'enum':
      return enumOf(c.name, (c.enumValues ?? []) as [string, ...string[]]);
    case 'custom': {
      const spec = c.customType;
      if (!spec) throw new UsageError(`${where}: a custom column needs its customType in the snapshot`);
      const driverValue =
        c.default?.kind === 'value' && 'driverValue' in c.default ? c.default.driverValue : undefined;
      // Values pass through as the driver takes them; only the default's stand-in becomes its stored value.
      const encoder = (dialect: DialectName) => (value: unknown) =>
        value === rebuiltDefault && driverValue ? decodeSnapshotValue(driverValue[dialect]) : value;
      return customType<{ data: unknown }>({
        name: spec.name,
        sqlType: { sqlite: spec.sqlType.sqlite, postgres: spec.sqlType.postgres },
        toDriver: { sqlite: encoder('sqlite'), postgres: encoder('postgres') },
      })(c.name);
    }
    default:
      throw new UsageError(`${where}: unknown column type "${String(c.type)}" in the snapshot`);
  }
}

function rebuiltDefaultOf(
  c: ColumnSnapshot,
  dialect: DialectName | undefined,
  where: string,
): ColumnDefault | undefined {
  const def = c.default;
  if (!def) return undefined;
  switch (def.kind) {
    case 'value':
      return 'driverValue' in def
        ? { kind: 'value', value: rebuiltDefault }
        : { kind: 'value', value: decodeSnapshotValue(def.value) };
    case 'sql':
      return { kind: 'sql', sql: rebuiltSql(def, dialect, `the default of ${where}`) };
    case 'random':
    case 'now':
      return { kind: def.kind };
    case 'fn':
      return {
        kind: 'fn',
        fn: () => {
          throw new UsageError(
            `${where} has a TypeScript default ($defaultFn) that a snapshot cannot keep: give it a value when inserting`,
          );
        },
      };
    default:
      throw new UsageError(`${where}: unknown default kind "${String((def as { kind: unknown }).kind)}"`);
  }
}

/**
 * Rebuilds real tables from a snapshot, so an old version of the schema can be created again (what
 * `verifyMigrations` in `syncline/testing` does with every snapshot). Custom columns take and return
 * values as the driver does, since their encoders are not in the snapshot, and `$defaultFn()`
 * defaults throw: give such columns a value.
 *
 * @example
 *   const v1 = schemaFromSnapshot(JSON.parse(readFileSync('schemas/v1.json', 'utf8')), { dialect: 'sqlite' });
 *   const db = await openDatabase(v1, sqlite());
 */
export function schemaFromSnapshot(
  snapshot: SchemaSnapshot,
  options: SchemaFromSnapshotOptions = {},
): Schema {
  const { dialect } = options;
  if (snapshot?.format !== SNAPSHOT_FORMAT || !Array.isArray(snapshot.tables)) {
    throw new UsageError(
      `not a syncline schema snapshot of format ${SNAPSHOT_FORMAT} (export one with: npx syncline schema export)`,
    );
  }
  const byName = new Map<string, AnyTable>();
  const columnOf = (tableName: string, columnName: string, where: string): Column<any, any, any, any> => {
    const column = byName.get(tableName)?.$columnBySqlName(columnName);
    if (!column)
      throw new UsageError(
        `${where} references ${tableName}.${columnName}, which the snapshot does not declare`,
      );
    return column;
  };

  const tables: Record<string, AnyTable> = {};
  for (const t of snapshot.tables) {
    const builders: ColumnBuilders = {};
    for (const c of t.columns) {
      const where = `${t.name}.${c.name}`;
      const ref = c.references;
      builders[c.key] = new ColumnBuilder({
        ...typedBuilder(c, where).config,
        name: c.name,
        notNull: c.notNull,
        primaryKey: c.primaryKey,
        unique: c.unique,
        uniqueName: c.uniqueName,
        default: rebuiltDefaultOf(c, dialect, where),
        references: ref && {
          target: () => columnOf(ref.table, ref.column, where),
          onDelete: ref.onDelete,
          onUpdate: ref.onUpdate,
        },
      });
    }
    const extras = (columns: Record<string, Column<any, any, any, any>>): TableExtra[] => {
      const bySqlName = new Map(Object.values(columns).map((c) => [c.name, c]));
      const cols = (names: readonly string[], what: string) =>
        names.map((n) => {
          const column = bySqlName.get(n);
          if (!column)
            throw new UsageError(
              `${t.name}: ${what} names the column "${n}", which the table does not declare`,
            );
          return column;
        });
      const out: TableExtra[] = [];
      if (t.primaryKey)
        out.push(
          primaryKey({ name: t.primaryKey.name, columns: cols(t.primaryKey.columns, 'the primary key') }),
        );
      for (const i of t.indexes) {
        let builder = (i.unique ? uniqueIndex : index)(i.name).on(...cols(i.columns, `index ${i.name}`));
        if (i.where)
          builder = builder.where(rebuiltSql(i.where, dialect, `the condition of index ${i.name}`));
        out.push(builder);
      }
      for (const c of t.checks)
        out.push(check(c.name, rebuiltSql(c, dialect, `check ${c.name} of ${t.name}`)));
      for (const fk of t.foreignKeys) {
        const where = `a foreign key of ${t.name}`;
        out.push(
          foreignKey({
            name: fk.name,
            columns: cols(fk.columns, where),
            foreignColumns: () =>
              fk.references.columns.map((n: string) => columnOf(fk.references.table, n, where)),
            onDelete: fk.onDelete,
            onUpdate: fk.onUpdate,
          }),
        );
      }
      return out;
    };
    const built = (t.local ? localTable : table)(t.name, builders, extras as never) as unknown as AnyTable;
    byName.set(t.name, built);
    tables[t.key] = built;
  }

  // References resolve lazily; resolving each once here reports a broken snapshot now, not at the first insert.
  for (const t of byName.values()) {
    for (const c of t.$columnList) c.references?.target();
    for (const fk of t.$foreignKeys) fk.target();
  }
  return schema(tables, { version: snapshot.version });
}
