import type { Database } from '../../database/database.js';
import { is } from '../../entity.js';
import { UsageError } from '../../errors.js';
import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import { SQL } from '../../sql/sql.js';

/**
 * Who is syncing: what authentication returned. `userId` is always there; any other claims of
 * the token (roles, tenant, ...) sit beside it for the rules to use.
 *
 * @example
 *   const user: SyncUser = { userId: 'u1', role: 'admin' };
 */
export interface SyncUser {
  readonly userId: string;
  readonly [claim: string]: unknown;
}

/**
 * The operation a write rule is asked about.
 *
 * @example
 *   const op: WriteOperation = 'update';
 */
export type WriteOperation = 'insert' | 'update' | 'delete';

/**
 * Who may read and write the rows of one table. `read` gives a condition on the table's columns
 * (subqueries allowed: build them on `db`, the server's Database) that a row must meet to reach this user; `true` or `undefined` lets every
 * row through, `false` none. `write` decides one row change, given the row keyed by JS property
 * names: for an update it is asked about the row before and after, for an insert about the new
 * row, for a delete about the current one. Without `write` the table is read-only.
 *
 * @example
 *   const rule: TableRule<typeof todos> = {
 *     read: (user, db) => inArray(todos.listId, db.select({ id: lists.id }).from(lists).where(eq(lists.ownerId, user.userId))),
 *     write: (user, row) => row.ownerId === user.userId,
 *   };
 */
export interface TableRule<TTable extends AnyTable> {
  read?: (user: SyncUser, db: Database) => SQL<unknown> | boolean | undefined;
  write?: (user: SyncUser, row: TTable['$inferSelect'], op: WriteOperation) => boolean | Promise<boolean>;
}

/**
 * The rules of a sync server: one optional `TableRule` per table, under the table's key in the
 * schema, each typed with its table's rows. With rules given, a table without a rule is neither
 * readable nor writable; without any rules, every authenticated user reads and writes everything.
 *
 * @example
 *   const rules: SyncRules<typeof appSchema> = {
 *     lists: { read: (u) => eq(lists.ownerId, u.userId), write: (u, row) => row.ownerId === u.userId },
 *   };
 */
export type SyncRules<TSchema extends Schema> = {
  [K in keyof TSchema['tables']]?: TableRule<TSchema['tables'][K]>;
};

/**
 * A rule's read condition for one user: a filter, every row (`undefined`) or no row.
 *
 * @example
 *   const filter: ReadFilter = ruleSet.readFilter(todos, user);
 *   const rows = filter === 'none' ? [] : await db.select().from(todos).where(filter);
 */
export type ReadFilter = SQL<unknown> | undefined | 'none';

type Row = Record<string, unknown>;

/**
 * The rules of a server, checked against its schema once and then asked per user and row. Keys
 * must name synced tables of the schema: a rule for an unknown or local table is a `UsageError`
 * at construction, so a typo never silently leaves a table closed.
 *
 * @example
 *   const ruleSet = new RuleSet(appSchema, { todos: { read: () => true, write: (u, row) => row.ownerId === u.userId } });
 *   ruleSet.readFilter(todos, user);                            // undefined: every row
 *   await ruleSet.checkWrite(todos, user, 'insert', undefined, row); // undefined, or why not
 */
export class RuleSet {
  /** No rules were given: every synced table is readable and writable by every user. */
  readonly open: boolean;
  private readonly byTable = new Map<string, TableRule<any>>();
  private db: Database | undefined;

  constructor(schema: Schema, rules: SyncRules<any> | undefined, db?: Database) {
    this.db = db;
    this.open = rules === undefined;
    if (rules === undefined) return;
    if (rules === null || typeof rules !== 'object' || Array.isArray(rules)) {
      throw new UsageError(
        'rules: expected an object with one rule per table key, like { todos: { read, write } }',
      );
    }
    const keys = Object.keys(schema.tables).filter((k) => !schema.tables[k]!.$local);
    for (const [key, rule] of Object.entries(rules)) {
      const table = Object.hasOwn(schema.tables, key) ? schema.tables[key] : undefined;
      if (!table) {
        throw new UsageError(
          `rules: "${key}" is not a table of the schema; use the table keys of schema({...}): ${keys.join(', ')}`,
        );
      }
      if (table.$local) {
        throw new UsageError(
          `rules: "${key}" is a local table, which never syncs; remove its rule or declare it with table()`,
        );
      }
      if (rule === undefined) continue;
      if (rule === null || typeof rule !== 'object') {
        throw new UsageError(
          `rules.${key}: expected { read?, write? }, got ${rule === null ? 'null' : typeof rule}`,
        );
      }
      for (const part of ['read', 'write'] as const) {
        if (rule[part] !== undefined && typeof rule[part] !== 'function') {
          throw new UsageError(`rules.${key}.${part}: expected a function, got ${typeof rule[part]}`);
        }
      }
      this.byTable.set(table.$name, rule);
    }
  }

  /**
   * The server's Database, handed to read rules so they can build subqueries on it. The sync
   * server binds it once the schema is open.
   */
  bindDatabase(db: Database): void {
    this.db = db;
  }

  /** True when some user may read some rows of the table (it is synced and has a rule, or no rules exist). */
  canRead(table: AnyTable): boolean {
    return !table.$local && (this.open || this.byTable.has(table.$name));
  }

  /** True when some user may write the table: it has a write rule, or no rules exist. */
  canWrite(table: AnyTable): boolean {
    return this.writeRefusal(table) === undefined;
  }

  /** Why no user may write the table, or `undefined` when its write rule decides per row. */
  writeRefusal(table: AnyTable): string | undefined {
    if (table.$local) return `${table.$name}: a local table never syncs`;
    if (this.open || this.byTable.get(table.$name)?.write) return undefined;
    return this.byTable.has(table.$name)
      ? `${table.$name}: the table is read-only (its rule has no write)`
      : `${table.$name}: the table is not writable (the server's rules have none for it)`;
  }

  /**
   * The read condition of the table for this user, to AND with a shape's filter: `undefined` for
   * every row, `'none'` when the user may read no row of it.
   */
  readFilter(table: AnyTable, user: SyncUser): ReadFilter {
    if (table.$local) return 'none';
    if (this.open) return undefined;
    const rule = this.byTable.get(table.$name);
    if (!rule) return 'none';
    if (!rule.read) return undefined;
    if (!this.db && rule.read.length >= 2) {
      throw new UsageError(
        `rules.${table.$name}.read: the rules have no database yet; call bindDatabase(db) first`,
      );
    }
    const condition = rule.read(user, this.db as Database);
    if (condition === undefined || condition === true) return undefined;
    if (condition === false) return 'none';
    if (is(condition, SQL)) return condition;
    throw new UsageError(
      `rules.${table.$name}.read returned ${typeof condition}; return a condition (eq, and, inArray, sql\`...\`), true for every row or false for none`,
    );
  }

  /**
   * Asks the table's write rule about one row change. `before` is the current row (update,
   * delete), `after` the row as it would be written (insert, update), both keyed by JS property
   * names; an update must be accepted on both. Resolves to the reason it is refused, for the
   * client's `rejected` event, or `undefined` when it is allowed.
   */
  async checkWrite(
    table: AnyTable,
    user: SyncUser,
    op: WriteOperation,
    before: Row | undefined,
    after: Row | undefined,
  ): Promise<string | undefined> {
    const refusal = this.writeRefusal(table);
    if (refusal || this.open) return refusal;
    const write = this.byTable.get(table.$name)!.write!;
    const rows = op === 'update' ? [before, after] : op === 'insert' ? [after] : [before];
    for (const row of rows) {
      // A row that does not exist (an update or delete of a row already gone) writes nothing.
      if (row === undefined) continue;
      let allowed: boolean;
      try {
        allowed = await write(user, row, op);
      } catch (error) {
        return `${table.$name}: the write rule failed on the ${op} of row ${keyText(table, row)}: ${(error as Error)?.message ?? String(error)}`;
      }
      if (allowed !== true)
        return `${table.$name}: the write rule refused the ${op} of row ${keyText(table, row)}`;
    }
    return undefined;
  }
}

/** The row's primary key as JSON by SQL name, for messages: `{"id":"…"}`. */
function keyText(table: AnyTable, row: Row): string {
  const key: Record<string, unknown> = {};
  for (const column of table.$primaryKeyColumns) {
    const value = row[column.key];
    key[column.name] = typeof value === 'bigint' ? value.toString() : value;
  }
  return JSON.stringify(key);
}
