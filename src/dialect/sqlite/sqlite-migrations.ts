import { MigrationError } from '../../errors.js';
import type { MigrationDialect } from '../../migrations/migration-dialect.js';
import type { SqlRunner } from '../../migrations/sql-runner.js';
import type { AnyTable } from '../../schema/table.js';
import type { DdlCompiler } from '../ddl-compiler.js';
import { quoteIdentifier } from '../quote-identifier.js';

const q = quoteIdentifier;

/** Files being migrated by this process: each file's queue of opens, by the promise at its end. */
const migratingFiles = new Map<string, Promise<void>>();

/**
 * SQLite keeps the schema version in `PRAGMA user_version`. A process opening the file while
 * another migrates waits on SQLite's own write lock (each step is `BEGIN IMMEDIATE`), and the
 * runner re-reads the version inside every step, so nothing is migrated twice.
 */
export function sqliteMigrations(ddl: () => DdlCompiler): MigrationDialect {
  return {
    async lock(session) {
      // Two connections of one process cannot wait for each other on SQLite's lock: a synchronous
      // driver's busy handler sleeps on the thread the holder needs to finish, so the waiter fails
      // with SQLITE_BUSY. Opens of one file in this process therefore take turns here.
      const main = (await session('PRAGMA database_list')).find((r) => r.name === 'main');
      const file = String(main?.file ?? '');
      if (file === '') return async () => {}; // in memory: no other connection can see it
      const previous = migratingFiles.get(file) ?? Promise.resolve();
      let release = () => {};
      const turn = new Promise<void>((resolve) => {
        release = resolve;
      });
      const tail = previous.then(() => turn);
      migratingFiles.set(file, tail);
      await previous;
      return async () => {
        release();
        if (migratingFiles.get(file) === tail) migratingFiles.delete(file);
      };
    },

    async readVersion(run) {
      const [row] = await run('PRAGMA user_version');
      return Number(row?.user_version ?? 0);
    },

    async writeVersion(run, version) {
      // PRAGMA takes no parameters; the version is a checked integer.
      await run(`PRAGMA user_version = ${Math.trunc(version)}`);
    },

    async beforeStep(session) {
      // A step may rebuild a table; with foreign keys on, dropping the old copy would cascade into
      // child tables. The pragma is ignored inside a transaction, so it is set before BEGIN.
      const [row] = await session('PRAGMA foreign_keys');
      const wasOn = Number(row?.foreign_keys ?? 0) === 1;
      if (wasOn) await session('PRAGMA foreign_keys = OFF');
      return async () => {
        if (wasOn) await session('PRAGMA foreign_keys = ON');
      };
    },

    async checkStep(run) {
      const broken = await run('PRAGMA foreign_key_check');
      if (broken.length > 0) {
        const where = broken
          .slice(0, 5)
          .map((r) => `${r.table} row ${r.rowid} -> ${r.parent}`)
          .join(', ');
        throw new MigrationError(
          `the step left ${broken.length} rows whose foreign keys point nowhere (${where})`,
        );
      }
    },

    async renamed(run, { table, to, column }) {
      const [outbox] = await run(
        "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = '_syncline_outbox'",
      );
      if (!outbox) return;
      if (to !== undefined) {
        await run('UPDATE _syncline_outbox SET table_name = ? WHERE table_name = ?', [to, table]);
        return;
      }
      if (!column) return;
      // The key moves within each pending row's JSON (its values and its primary key), value kept.
      const from = `$.${JSON.stringify(column.from)}`;
      const next = `$.${JSON.stringify(column.to)}`;
      const moved = (json: string) =>
        `CASE WHEN ${json} IS NOT NULL AND json_type(${json}, ?) IS NOT NULL THEN json_set(json_remove(${json}, ?), ?, json(${json} -> ?)) ELSE ${json} END`;
      const params = [from, from, next, from];
      await run(
        `UPDATE _syncline_outbox SET "row" = ${moved('"row"')}, pk = ${moved('pk')} WHERE table_name = ?`,
        [...params, ...params, table],
      );
    },

    dropColumn() {
      // DROP COLUMN fails on SQLite for indexed, unique or referenced columns: rebuild instead.
      return undefined;
    },

    addColumn(table, column) {
      // ALTER TABLE ADD COLUMN takes no primary key, no unique constraint and only a constant
      // default; anything else is done by rebuilding the table.
      const def = column.default?.kind;
      if (column.primaryKey || column.unique || def === 'random' || def === 'now' || def === 'sql')
        return undefined;
      if (column.notNull && (def === undefined || def === 'fn')) return undefined;
      return [`ALTER TABLE ${q(table.$name)} ADD COLUMN ${ddl().columnDefinition(table, column, false)}`];
    },

    async alterTable(run, table) {
      await rebuildTable(run, ddl(), table);
    },
  };
}

/**
 * SQLite's procedure for changes ALTER TABLE cannot make (sqlite.org/lang_altertable.html, "other
 * kinds of table schema changes"): create the declared table under a new name, copy the rows of
 * the columns both have, drop the old table, rename the new one, then put back the indexes and
 * triggers. Foreign keys are off during the step and checked before it commits.
 */
async function rebuildTable(run: SqlRunner, ddl: DdlCompiler, table: AnyTable): Promise<void> {
  const name = table.$name;
  const oldColumns = (await run(`PRAGMA table_info(${q(name)})`)).map((r) => String(r.name));
  if (oldColumns.length === 0) throw new MigrationError(`alterTable: the table "${name}" does not exist`);
  const kept = table.$columnList.map((c) => c.name).filter((c) => oldColumns.includes(c));
  const declaredIndexes = new Set(table.$indexes.map((i) => i.name));
  const saved = await run(
    "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
    [name],
  );
  // Indexes the declaration does not know are kept when their columns all survive.
  const keptIndexes: string[] = [];
  const triggers: string[] = [];
  for (const row of saved) {
    if (row.type === 'trigger') triggers.push(String(row.sql));
    else if (!declaredIndexes.has(String(row.name))) {
      const columns = (await run(`PRAGMA index_info(${q(String(row.name))})`)).map((r) => r.name);
      if (columns.every((c) => c !== null && kept.includes(String(c)))) keptIndexes.push(String(row.sql));
    }
  }
  const temporary = `_syncline_new_${name}`;
  await run(`DROP TABLE IF EXISTS ${q(temporary)}`);
  await run(ddl.createTable(table, false, temporary));
  const list = kept.map(q).join(', ');
  if (kept.length > 0) await run(`INSERT INTO ${q(temporary)} (${list}) SELECT ${list} FROM ${q(name)}`);
  await run(`DROP TABLE ${q(name)}`);
  // Since 3.26 RENAME re-checks every view and trigger in the schema, and those that use the table
  // by name fail now that it is gone for a moment; the legacy rename leaves them (and other
  // tables' foreign keys) naming it, which is right once the new table has the name.
  const [legacy] = await run('PRAGMA legacy_alter_table');
  const wasLegacy = Number(legacy?.legacy_alter_table ?? 0) === 1;
  if (!wasLegacy) await run('PRAGMA legacy_alter_table = ON');
  try {
    await run(`ALTER TABLE ${q(temporary)} RENAME TO ${q(name)}`);
  } finally {
    if (!wasLegacy) await run('PRAGMA legacy_alter_table = OFF');
  }
  for (const statement of ddl.createIndexes(table)) await run(statement);
  for (const statement of [...keptIndexes, ...triggers]) await run(statement);
}
