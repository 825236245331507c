import type { Column } from '../schema/column.js';
import type { ColumnDefault } from '../schema/column-type.js';
import type { AnyTable, TableBase } from '../schema/table.js';
import type { Dialect } from './dialect.js';

/**
 * Writes CREATE TABLE / CREATE INDEX statements for a declared table. Shared by every dialect; a
 * dialect overrides how defaults that need a function (random UUID, now) are spelled.
 */
export abstract class DdlCompiler {
  private dialectRef: Dialect | undefined;

  attach(dialect: Dialect): void {
    this.dialectRef = dialect;
  }

  protected get dialect(): Dialect {
    return this.dialectRef!;
  }

  private q(name: string): string {
    return this.dialect.compiler.quote(name);
  }

  /** SQL for a default that needs a function, or undefined when the dialect has none. */
  protected abstract functionDefault(kind: 'random' | 'now'): string | undefined;

  /** The default of a column as SQL, or undefined when it has none in SQL (a TypeScript default). */
  defaultSql(column: Column<any, any, any, any>): string | undefined {
    const def: ColumnDefault | undefined = column.default;
    if (!def) return undefined;
    switch (def.kind) {
      case 'value': {
        if (def.value === null) return 'NULL';
        const encoded = this.dialect.physicalType(column.type).toDriver(def.value);
        return this.dialect.compiler.literal(encoded);
      }
      case 'sql':
        return `(${this.dialect.compiler.compileInline(def.sql.node)})`;
      case 'random':
      case 'now':
        return this.functionDefault(def.kind);
      case 'fn':
        return undefined;
    }
  }

  /** One column as written in CREATE TABLE or ALTER TABLE ADD COLUMN, its constraints inline. */
  columnDefinition(table: TableBase, column: Column<any, any, any, any>, inlinePrimaryKey: boolean): string {
    let sql = `${this.q(column.name)} ${this.columnType(column)}`;
    // SQLite lets NULL into a primary key column unless it is said NOT NULL (PostgreSQL never does).
    if (column.notNull || table.$primaryKeyColumns.includes(column)) sql += ' NOT NULL';
    if (inlinePrimaryKey) sql += ' PRIMARY KEY';
    const def = this.defaultSql(column);
    if (def !== undefined) sql += ` DEFAULT ${def}`;
    if (column.unique) {
      sql += column.uniqueName ? ` CONSTRAINT ${this.q(column.uniqueName)} UNIQUE` : ' UNIQUE';
    }
    if (column.type.kind === 'enum') sql += ` ${this.enumCheck(table, column)}`;
    if (column.references) sql += ` ${this.referencesClause(column)}`;
    return sql;
  }

  /** The column's SQL type in this dialect. */
  columnType(column: Column<any, any, any, any>): string {
    return this.dialect.physicalType(column.type).sqlType;
  }

  /** The named CHECK that keeps an enumOf() column to its values. */
  enumCheck(table: TableBase, column: Column<any, any, any, any>): string {
    const values = (column.type.enumValues ?? []).map((v) => this.dialect.compiler.literal(v)).join(', ');
    return `CONSTRAINT ${this.q(`${table.$name}_${column.name}_check`)} CHECK (${this.q(column.name)} IN (${values}))`;
  }

  /** `REFERENCES "t" ("c") ON DELETE ...` of a column-level foreign key. */
  referencesClause(column: Column<any, any, any, any>): string {
    const ref = column.references!;
    const target = ref.target();
    let sql = `REFERENCES ${this.q(target.table.$name)} (${this.q(target.name)})`;
    if (ref.onDelete) sql += ` ON DELETE ${ref.onDelete.toUpperCase()}`;
    if (ref.onUpdate) sql += ` ON UPDATE ${ref.onUpdate.toUpperCase()}`;
    return sql;
  }

  /** Table-level constraints: composite foreign keys and checks (the primary key is separate). */
  tableConstraints(table: TableBase): string[] {
    const parts: string[] = [];
    for (const fk of table.$foreignKeys) {
      const targets = fk.target();
      let sql = fk.name ? `CONSTRAINT ${this.q(fk.name)} ` : '';
      sql += `FOREIGN KEY (${fk.columns.map((c) => this.q(c.name)).join(', ')}) REFERENCES ${this.q(targets[0]!.table.$name)} (${targets.map((c) => this.q(c.name)).join(', ')})`;
      if (fk.onDelete) sql += ` ON DELETE ${fk.onDelete.toUpperCase()}`;
      if (fk.onUpdate) sql += ` ON UPDATE ${fk.onUpdate.toUpperCase()}`;
      parts.push(sql);
    }
    for (const check of table.$checks) {
      parts.push(
        `CONSTRAINT ${this.q(check.name)} CHECK (${this.dialect.compiler.compileInline(check.expression.node)})`,
      );
    }
    return parts;
  }

  /** The name of a unique column's constraint: its own, or the one PostgreSQL would give it. */
  uniqueConstraintName(table: TableBase, column: Column<any, any, any, any>): string {
    return column.uniqueName ?? `${table.$name}_${column.name}_key`;
  }

  /**
   * Every constraint of the table but the primary key, each a standalone clause with the name
   * PostgreSQL would give it, for `ALTER TABLE ... ADD` when a table is altered in place. Unique
   * constraints named in `existing` are left out: they are there already.
   */
  standaloneConstraints(table: TableBase, existing: ReadonlySet<string> = new Set()): string[] {
    const parts: string[] = [];
    for (const column of table.$columnList) {
      const uniqueName = this.uniqueConstraintName(table, column);
      if (column.unique && !existing.has(uniqueName)) {
        parts.push(`CONSTRAINT ${this.q(uniqueName)} UNIQUE (${this.q(column.name)})`);
      }
      if (column.type.kind === 'enum') parts.push(this.enumCheck(table, column));
      if (column.references) {
        parts.push(
          `CONSTRAINT ${this.q(`${table.$name}_${column.name}_fkey`)} FOREIGN KEY (${this.q(column.name)}) ${this.referencesClause(column)}`,
        );
      }
    }
    return [...parts, ...this.tableConstraints(table)];
  }

  /** `CREATE TABLE IF NOT EXISTS` with every column and constraint of the table. */
  createTable(table: TableBase, ifNotExists = true, name: string = table.$name): string {
    const pkColumns = table.$primaryKeyColumns;
    const inlinePk = !table.$primaryKey && pkColumns.length === 1 ? pkColumns[0] : undefined;
    const parts = table.$columnList.map((c) => this.columnDefinition(table, c, c === inlinePk));
    if (!inlinePk && pkColumns.length > 0) {
      const pkName = table.$primaryKey?.name ? `CONSTRAINT ${this.q(table.$primaryKey.name)} ` : '';
      parts.push(`${pkName}PRIMARY KEY (${pkColumns.map((c) => this.q(c.name)).join(', ')})`);
    }
    parts.push(...this.tableConstraints(table));
    return `CREATE TABLE ${ifNotExists ? 'IF NOT EXISTS ' : ''}${this.q(name)} (${parts.join(', ')})`;
  }

  /** `CREATE INDEX IF NOT EXISTS` for each index of the table. */
  createIndexes(table: TableBase, ifNotExists = true): string[] {
    return table.$indexes.map((index) => {
      let sql = `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${ifNotExists ? 'IF NOT EXISTS ' : ''}${this.q(index.name)} ON ${this.q(table.$name)} (${index.columns.map((c) => this.q(c.name)).join(', ')})`;
      if (index.where) sql += ` WHERE ${this.dialect.compiler.compileInline(index.where.node)}`;
      return sql;
    });
  }

  /** Every statement that creates the given tables, ordered so referenced tables come first. */
  createSchema(tables: readonly AnyTable[]): string[] {
    const statements: string[] = [];
    for (const table of orderByReferences(tables)) {
      statements.push(this.createTable(table), ...this.createIndexes(table));
    }
    return statements;
  }
}

/** Orders tables so that each comes after the tables it references (a cycle keeps declaration order). */
export function orderByReferences(tables: readonly AnyTable[]): AnyTable[] {
  const byName = new Map(tables.map((t) => [t.$name, t]));
  const done = new Set<string>();
  const visiting = new Set<string>();
  const ordered: AnyTable[] = [];
  const visit = (t: AnyTable) => {
    if (done.has(t.$name) || visiting.has(t.$name)) return;
    visiting.add(t.$name);
    const targets = [
      ...t.$columnList.flatMap((c) => (c.references ? [c.references.target().table.$name] : [])),
      ...t.$foreignKeys.map((fk) => fk.target()[0]!.table.$name),
    ];
    for (const name of targets) {
      const target = byName.get(name);
      if (target && target !== t) visit(target);
    }
    visiting.delete(t.$name);
    done.add(t.$name);
    ordered.push(t);
  };
  tables.forEach(visit);
  return ordered;
}
