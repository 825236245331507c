import type { Dialect } from '../dialect/dialect.js';
import type { ReferenceAction } from '../schema/column-builder.js';
import type { Schema } from '../schema/schema.js';
import type { AnyTable } from '../schema/table.js';
import type { LiveTable } from './live-schema.js';
import type { SchemaDifference } from './schema-difference.js';

/** Tables syncline keeps for itself: the schema version (`__schema`), sync state, a rebuild's copy. */
export function isSynclineTable(name: string): boolean {
  return name === '__schema' || name.startsWith('_syncline');
}

interface IndexShape {
  readonly columns: readonly string[];
  readonly unique: boolean;
  readonly partial: boolean;
}

interface ForeignKeyShape {
  readonly name: string | undefined;
  readonly columns: readonly string[];
  readonly targetTable: string;
  readonly targetColumns: readonly string[];
  readonly onDelete: ReferenceAction;
  readonly onUpdate: ReferenceAction;
}

const list = (names: readonly string[]) => `(${names.join(', ')})`;
const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((name, i) => name === b[i]);
const sameSet = (a: readonly string[], b: readonly string[]) => sameList([...a].sort(), [...b].sort());

function describeIndex(index: IndexShape): string {
  return `${index.unique ? 'unique ' : ''}${list(index.columns)}${index.partial ? ' partial' : ''}`;
}

function describeForeignKey(key: ForeignKeyShape): string {
  return `${list(key.columns)} references ${key.targetTable} ${list(key.targetColumns)} on delete ${key.onDelete} on update ${key.onUpdate}`;
}

/**
 * Every difference between the declared schema and the live tables, in schema order: per table
 * its columns (type, nullability, default), primary key, indexes, unique constraints and foreign
 * keys, then the tables the schema does not declare. Types and defaults are compared in the
 * dialect's canonical spelling; syncline's own tables are left out.
 */
export function compareSchema(
  schema: Schema,
  live: readonly LiveTable[],
  dialect: Dialect,
): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  const remaining = new Map(live.filter((t) => !isSynclineTable(t.name)).map((t) => [t.name, t]));
  for (const table of schema.tableList) {
    const found = remaining.get(table.$name);
    if (!found) {
      differences.push({
        kind: 'missingTable',
        table: table.$name,
        message: `table "${table.$name}" is missing from the database`,
      });
      continue;
    }
    remaining.delete(table.$name);
    differences.push(
      ...compareColumns(table, found, dialect),
      ...comparePrimaryKey(table, found),
      ...compareIndexes(table, found),
      ...compareUniqueConstraints(table, found),
      ...compareForeignKeys(table, found),
    );
  }
  for (const extra of remaining.values()) {
    differences.push({
      kind: 'extraTable',
      table: extra.name,
      message: `table "${extra.name}" is in the database but not in the schema`,
    });
  }
  return differences;
}

function compareColumns(table: AnyTable, live: LiveTable, dialect: Dialect): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  const t = table.$name;
  const canonical = dialect.canonicalSql;
  const keyColumns = new Set(table.$primaryKeyColumns);
  const remaining = new Map(live.columns.map((c) => [c.name, c]));
  for (const column of table.$columnList) {
    const name = column.name;
    const found = remaining.get(name);
    if (!found) {
      differences.push({ kind: 'missingColumn', table: t, name, message: `${t}.${name}: column is missing` });
      continue;
    }
    remaining.delete(name);
    const type = canonical.type(dialect.ddl.columnType(column));
    const liveType = canonical.type(found.type);
    if (type !== liveType) {
      differences.push({
        kind: 'type',
        table: t,
        name,
        expected: type,
        actual: liveType,
        message: `${t}.${name}: type is ${liveType}, the schema declares ${type}`,
      });
    }
    const notNull = column.notNull || keyColumns.has(column);
    if (notNull !== found.notNull) {
      const says = (n: boolean) => (n ? 'NOT NULL' : 'nullable');
      differences.push({
        kind: 'nullability',
        table: t,
        name,
        expected: notNull ? 'NOT NULL' : 'NULL',
        actual: found.notNull ? 'NOT NULL' : 'NULL',
        message: `${t}.${name}: column is ${says(found.notNull)}, the schema declares it ${says(notNull)}`,
      });
    }
    // A TypeScript default ($defaultFn) has no SQL default, so the column must have none.
    const def = canonical.default(dialect.ddl.defaultSql(column));
    const liveDef = canonical.default(found.default);
    if (def !== liveDef) {
      const says = (d: string | undefined) => (d === undefined ? 'no default' : `default ${d}`);
      differences.push({
        kind: 'default',
        table: t,
        name,
        expected: def,
        actual: liveDef,
        message: `${t}.${name}: column has ${says(liveDef)}, the schema declares ${says(def)}`,
      });
    }
  }
  for (const extra of remaining.values()) {
    differences.push({
      kind: 'extraColumn',
      table: t,
      name: extra.name,
      actual: extra.type,
      message: `${t}.${extra.name}: column is in the database but not in the schema`,
    });
  }
  return differences;
}

function comparePrimaryKey(table: AnyTable, live: LiveTable): SchemaDifference[] {
  const expected = table.$primaryKeyColumns.map((c) => c.name);
  const actual = live.columns
    .filter((c) => c.primaryKeyPosition > 0)
    .sort((a, b) => a.primaryKeyPosition - b.primaryKeyPosition)
    .map((c) => c.name);
  if (sameList(expected, actual)) return [];
  const says = (names: string[]) => (names.length === 0 ? 'none' : list(names));
  return [
    {
      kind: 'primaryKey',
      table: table.$name,
      expected: says(expected),
      actual: says(actual),
      message: `${table.$name}: primary key is ${says(actual)}, the schema declares ${says(expected)}`,
    },
  ];
}

function compareIndexes(table: AnyTable, live: LiveTable): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  const t = table.$name;
  const remaining = new Map(live.indexes.map((i) => [i.name, i]));
  for (const index of table.$indexes) {
    const expected = describeIndex({
      columns: index.columns.map((c) => c.name),
      unique: index.unique,
      partial: index.where !== undefined,
    });
    const found = remaining.get(index.name);
    if (!found) {
      differences.push({
        kind: 'missingIndex',
        table: t,
        name: index.name,
        expected,
        message: `${t}: index "${index.name}" ${expected} is missing`,
      });
      continue;
    }
    remaining.delete(index.name);
    const actual = describeIndex(found);
    if (actual !== expected) {
      differences.push({
        kind: 'index',
        table: t,
        name: index.name,
        expected,
        actual,
        message: `${t}: index "${index.name}" is ${actual}, the schema declares ${expected}`,
      });
    }
  }
  for (const extra of remaining.values()) {
    differences.push({
      kind: 'extraIndex',
      table: t,
      name: extra.name,
      actual: describeIndex(extra),
      message: `${t}: index "${extra.name}" ${describeIndex(extra)} is in the database but not in the schema`,
    });
  }
  return differences;
}

/**
 * A column's `.unique()` is a UNIQUE constraint, matched by its columns (SQLite keeps no constraint
 * names) and reported as an index: missing, or extra. It is named as PostgreSQL names it.
 */
function compareUniqueConstraints(table: AnyTable, live: LiveTable): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  const t = table.$name;
  const remaining = [...live.uniqueConstraints];
  for (const column of table.$columnList) {
    if (!column.unique) continue;
    const name = column.uniqueName ?? `${t}_${column.name}_key`;
    const at = remaining.findIndex((u) => sameSet(u.columns, [column.name]));
    if (at >= 0) {
      remaining.splice(at, 1);
      continue;
    }
    differences.push({
      kind: 'missingIndex',
      table: t,
      name,
      expected: `unique constraint (${column.name})`,
      message: `${t}: unique constraint "${name}" on (${column.name}) is missing`,
    });
  }
  for (const extra of remaining) {
    const name = extra.name ?? `${t}_${extra.columns.join('_')}_key`;
    differences.push({
      kind: 'extraIndex',
      table: t,
      name,
      actual: `unique constraint ${list(extra.columns)}`,
      message: `${t}: unique constraint "${name}" on ${list(extra.columns)} is in the database but not in the schema`,
    });
  }
  return differences;
}

/** The foreign keys a table declares, on columns and at table level, named as PostgreSQL names them. */
function declaredForeignKeys(table: AnyTable): ForeignKeyShape[] {
  const t = table.$name;
  const keys: ForeignKeyShape[] = [];
  for (const column of table.$columnList) {
    if (!column.references) continue;
    const target = column.references.target();
    keys.push({
      name: `${t}_${column.name}_fkey`,
      columns: [column.name],
      targetTable: target.table.$name,
      targetColumns: [target.name],
      onDelete: column.references.onDelete ?? 'no action',
      onUpdate: column.references.onUpdate ?? 'no action',
    });
  }
  for (const key of table.$foreignKeys) {
    const targets = key.target();
    const columns = key.columns.map((c) => c.name);
    keys.push({
      name: key.name ?? `${t}_${columns.join('_')}_fkey`,
      columns,
      targetTable: targets[0]!.table.$name,
      targetColumns: targets.map((c) => c.name),
      onDelete: key.onDelete ?? 'no action',
      onUpdate: key.onUpdate ?? 'no action',
    });
  }
  return keys;
}

/** Foreign keys are matched by their columns (SQLite keeps no names), then compared whole. */
function compareForeignKeys(table: AnyTable, live: LiveTable): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  const t = table.$name;
  const remaining = [...live.foreignKeys];
  for (const key of declaredForeignKeys(table)) {
    const name = key.name!;
    const expected = describeForeignKey(key);
    const candidates = remaining.filter((k) => sameList(k.columns, key.columns));
    const found =
      candidates.find((k) => describeForeignKey(k) === expected) ??
      candidates.find((k) => k.name === name) ??
      candidates[0];
    if (!found) {
      differences.push({
        kind: 'missingForeignKey',
        table: t,
        name,
        expected,
        message: `${t}: foreign key "${name}" ${expected} is missing`,
      });
      continue;
    }
    remaining.splice(remaining.indexOf(found), 1);
    const actual = describeForeignKey(found);
    if (actual !== expected) {
      differences.push({
        kind: 'foreignKey',
        table: t,
        name,
        expected,
        actual,
        message: `${t}: foreign key "${name}" is ${actual}, the schema declares ${expected}`,
      });
    }
  }
  for (const extra of remaining) {
    const name = extra.name ?? `${t}_${extra.columns.join('_')}_fkey`;
    differences.push({
      kind: 'extraForeignKey',
      table: t,
      name,
      actual: describeForeignKey(extra),
      message: `${t}: foreign key "${name}" ${describeForeignKey(extra)} is in the database but not in the schema`,
    });
  }
  return differences;
}
