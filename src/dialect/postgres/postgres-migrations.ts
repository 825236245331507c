import { MigrationError } from '../../errors.js';
import type { MigrationDialect } from '../../migrations/migration-dialect.js';
import type { SqlRunner } from '../../migrations/sql-runner.js';
import type { AnyTable } from '../../schema/table.js';
import type { DdlCompiler } from '../ddl-compiler.js';
import { quoteIdentifier } from '../quote-identifier.js';

const q = quoteIdentifier;

/** The first key of syncline's advisory locks; the second is the schema (namespace) being migrated. */
const LOCK_CLASS = 0x53594e;

/**
 * PostgreSQL keeps the schema version in a table `__schema` that syncline owns, in the schema
 * (namespace) the database works in. Concurrent opens take an advisory lock, so one process
 * migrates and the others find the work done.
 */
export function postgresMigrations(ddl: () => DdlCompiler): MigrationDialect {
  return {
    async lock(session) {
      await session('SELECT pg_advisory_lock($1, hashtext(current_schema()))', [LOCK_CLASS]);
      return async () => {
        await session('SELECT pg_advisory_unlock($1, hashtext(current_schema()))', [LOCK_CLASS]);
      };
    },

    async readVersion(run) {
      await run(
        'CREATE TABLE IF NOT EXISTS __schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())',
      );
      const [row] = await run('SELECT version FROM __schema WHERE id = 1');
      return row ? Number(row.version) : 0;
    },

    async writeVersion(run, version) {
      await run(
        'INSERT INTO __schema (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = now()',
        [version],
      );
    },

    async beforeStep() {
      return async () => {};
    },
    async checkStep() {},

    dropColumn(table, column) {
      return [`ALTER TABLE ${q(table.$name)} DROP COLUMN ${q(column)}`];
    },

    addColumn(table, column) {
      return [`ALTER TABLE ${q(table.$name)} ADD COLUMN ${ddl().columnDefinition(table, column, false)}`];
    },

    async alterTable(run, table) {
      await alterInPlace(run, ddl(), table);
    },
  };
}

/**
 * Brings a live table to its declaration with ALTER TABLE: adds and drops columns, sets each
 * column's type (casting the values), nullability and default, and replaces the unique, check and
 * foreign key constraints with the declared ones. The primary key is left as it is.
 */
async function alterInPlace(run: SqlRunner, ddl: DdlCompiler, table: AnyTable): Promise<void> {
  const name = table.$name;
  const t = q(name);
  const live = (
    await run(
      'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
      [name],
    )
  ).map((r) => String(r.column_name));
  if (live.length === 0) throw new MigrationError(`alterTable: the table "${name}" does not exist`);
  const constraints = await run(
    `SELECT k.conname, k.contype,
       array_to_string(ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS c(num, i)
         JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = c.num ORDER BY c.i), ',') AS columns
     FROM pg_constraint k
     WHERE k.conrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass AND k.contype IN ('c', 'u', 'f')`,
    [name],
  );
  // A unique constraint that stays as declared is kept: other tables' foreign keys may depend on
  // it, and PostgreSQL refuses to drop it under them. Every other constraint is dropped and re-added.
  const declaredUnique = new Map(
    table.$columnList.filter((c) => c.unique).map((c) => [ddl.uniqueConstraintName(table, c), c.name]),
  );
  const keptUnique = new Set<string>();
  for (const c of constraints) {
    const conname = String(c.conname);
    if (c.contype === 'u' && declaredUnique.get(conname) === c.columns) keptUnique.add(conname);
    else await run(`ALTER TABLE ${t} DROP CONSTRAINT ${q(conname)}`);
  }
  const declared = new Set(table.$columnList.map((c) => c.name));
  for (const column of live)
    if (!declared.has(column)) await run(`ALTER TABLE ${t} DROP COLUMN ${q(column)}`);
  const pk = new Set(table.$primaryKeyColumns);
  for (const column of table.$columnList) {
    const c = q(column.name);
    const type = ddl.columnType(column);
    const def = ddl.defaultSql(column);
    if (!live.includes(column.name)) {
      // With its default, so the rows already there get it (and a NOT NULL column can be added).
      await run(`ALTER TABLE ${t} ADD COLUMN ${c} ${type}${def === undefined ? '' : ` DEFAULT ${def}`}`);
    } else if (!(await sameType(run, name, column.name, type))) {
      // Only a real change of type: ALTER ... TYPE fails on any column a view uses, and rewrites the table.
      await run(
        `ALTER TABLE ${t} ALTER COLUMN ${c} DROP DEFAULT, ALTER COLUMN ${c} TYPE ${type} USING ${c}::${type}`,
      );
    }
    await run(
      `ALTER TABLE ${t} ALTER COLUMN ${c} ${def === undefined ? 'DROP DEFAULT' : `SET DEFAULT ${def}`}`,
    );
    // Rows holding NULL in a column that becomes NOT NULL fail the step, as on SQLite.
    const nullability = column.notNull || pk.has(column) ? 'SET NOT NULL' : 'DROP NOT NULL';
    await run(`ALTER TABLE ${t} ALTER COLUMN ${c} ${nullability}`);
  }
  for (const constraint of ddl.standaloneConstraints(table, keptUnique))
    await run(`ALTER TABLE ${t} ADD ${constraint}`);
  for (const statement of ddl.createIndexes(table)) await run(statement);
}

/**
 * Whether a live column already has the declared type. A type written with a modifier
 * (`VARCHAR(20)`) is always treated as changed: `to_regtype` compares the base type only.
 */
async function sameType(run: SqlRunner, table: string, column: string, type: string): Promise<boolean> {
  if (type.includes('(')) return false;
  const [row] = await run(
    `SELECT a.atttypid = to_regtype($3) AS same FROM pg_attribute a
     WHERE a.attrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass AND a.attname = $2`,
    [table, column, type],
  );
  return row?.same === true;
}
