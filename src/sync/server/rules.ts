import type { Database } from '../../database/database.js';
import { is } from '../../entity.js';
import { UsageError } from '../../errors.js';
import { resultsEqual } from '../../live/result-equality.js';
import type { AnyColumn } from '../../schema/column.js';
import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import { SQL } from '../../sql/sql.js';
import { encodeValue } from '../protocol/value-codec.js';

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
 * One pushed change of a row as a `writeChange` rule sees it: what the server would do (`op`) and
 * the row before and after it, keyed by JS property names. An insert of a key that exists is an
 * update of that row. A delete of a row that never existed has no `before` (it writes nothing, but
 * a rule may still refuse it); a deleted row's `before` is the row as it was deleted.
 *
 * @example
 *   const change: WriteChange<typeof todos.$inferSelect> = { op: 'update', before: row, after: { ...row, done: true } };
 */
export type WriteChange<TRow> =
  | { readonly op: 'insert'; readonly before: undefined; readonly after: TRow }
  | { readonly op: 'update'; readonly before: TRow; readonly after: TRow }
  | { readonly op: 'delete'; readonly before: TRow | undefined; readonly after: undefined };

/**
 * Who may read and write the rows of one table. `read` gives a condition on the table's columns
 * (subqueries allowed: build them on `db`, the server's Database) that a row must meet to reach
 * this user; `true` or `undefined` lets every row through, `false` none.
 *
 * Writes are decided by either form, or both (then both must allow), each under a key of its own:
 * `write(user, row, op)` is asked about one row at a time (for an update the row before and the
 * row after, separately; an insert the new row; a delete the current one); `writeChange(user,
 * { op, before, after })` is asked once per change with both rows, so it can compare them (a
 * column that must not change, a value only some may set). `writableColumns` lists the columns
 * clients may write: a change that gives any other column a new value (on insert: other than its
 * `.default()` constant, or null without one) is refused, naming the column. Without `write` or
 * `writeChange` the table is read-only.
 *
 * @example
 *   const rule: TableRule<typeof todos> = {
 *     read: (user, db) => inArray(todos.listId, db.select({ id: lists.id }).from(lists).where(eq(lists.ownerId, user.userId))),
 *     writeChange: (user, change) => change.op !== 'update' || change.before.listId === change.after.listId, // todos stay in their list
 *     writableColumns: ['listId', 'title', 'done', 'updatedAt', 'tags'],
 *   };
 */
export interface TableRule<TTable extends AnyTable> {
  read?: (user: SyncUser, db: Database) => SQL<unknown> | boolean | undefined;
  write?: (user: SyncUser, row: TTable['$inferSelect'], op: WriteOperation) => boolean | Promise<boolean>;
  writeChange?: (user: SyncUser, change: WriteChange<TTable['$inferSelect']>) => boolean | Promise<boolean>;
  writableColumns?: readonly (keyof TTable['$inferSelect'] & string)[];
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
      for (const part of ['read', 'write', 'writeChange'] as const) {
        if (rule[part] !== undefined && typeof rule[part] !== 'function') {
          throw new UsageError(`rules.${key}.${part}: expected a function, got ${typeof rule[part]}`);
        }
      }
      checkWritableColumns(key, table, rule);
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
    const rule = this.byTable.get(table.$name);
    if (this.open || rule?.write || rule?.writeChange) return undefined;
    return rule
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
   * Asks the table's write rules about one row change. `op` is the change as the client pushed
   * it; `before` is the row as it is (or as it was deleted), `after` the row as it would be
   * written, both keyed by JS property names; `key` is the row's primary key, for the reason.
   * What the rules see follows from the rows: with both it is an update (an insert of a key that
   * exists is one), with neither a delete of a row that never existed (`write`, which needs a
   * row, is not asked about it). Resolves to the reason it is refused, for the client's
   * `rejected` event, or `undefined` when it is allowed.
   */
  async checkWrite(
    table: AnyTable,
    user: SyncUser,
    op: WriteOperation,
    before: Row | undefined,
    after: Row | undefined,
    key?: Row,
  ): Promise<string | undefined> {
    const refusal = this.writeRefusal(table);
    if (refusal || this.open) return refusal;
    const rule = this.byTable.get(table.$name)!;
    // A reason names the change as the client sent it, never what the server found: an insert of
    // another user's key is an update here, and saying so would tell the client that row exists.
    const what = `the ${op} of row ${keyText(table, key ?? before ?? after ?? {})}`;
    const change = (
      before === undefined
        ? after === undefined
          ? { op: 'delete', before, after }
          : { op: 'insert', before, after }
        : { op: after === undefined ? 'delete' : 'update', before, after }
    ) as WriteChange<Row>;
    try {
      let allowed = rule.writeChange ? await rule.writeChange(user, change) : true;
      for (const row of [change.before, change.after]) {
        if (allowed === true && rule.write && row !== undefined)
          allowed = await rule.write(user, row, change.op);
      }
      if (allowed !== true) return `${table.$name}: the write rule refused ${what}`;
    } catch (error) {
      return `${table.$name}: the write rule failed on ${what}: ${(error as Error)?.message ?? String(error)}`;
    }
    return unwritableColumn(table, rule.writableColumns, change, what);
  }
}

/** Refuses a `writableColumns` that is not a list of the table's column keys, or that no write rule uses. */
function checkWritableColumns(key: string, table: AnyTable, rule: TableRule<AnyTable>): void {
  const columns = rule.writableColumns;
  if (columns === undefined) return;
  const keys = table.$columnList.map((c) => c.key);
  if (!Array.isArray(columns)) {
    throw new UsageError(
      `rules.${key}.writableColumns: expected a list of column keys, like ['title', 'done']`,
    );
  }
  const unknown = columns.find((c) => !keys.includes(c));
  if (unknown !== undefined) {
    throw new UsageError(
      `rules.${key}.writableColumns: ${JSON.stringify(unknown)} is not a column key of ${table.$name}; use the keys of table(): ${keys.join(', ')}`,
    );
  }
  if (!rule.write && !rule.writeChange) {
    throw new UsageError(
      `rules.${key}.writableColumns: the table has no write or writeChange rule, so clients may not write it at all; add one, or remove writableColumns`,
    );
  }
}

/**
 * Why the change writes a column clients may not, or undefined. A column outside `writable` must
 * keep its value (on insert: its `.default()` constant, or null without a default); a primary
 * key column is the row's identity and always given.
 */
function unwritableColumn(
  table: AnyTable,
  writable: readonly string[] | undefined,
  change: WriteChange<Row>,
  what: string,
): string | undefined {
  if (writable === undefined || change.after === undefined) return undefined;
  for (const column of table.$columnList) {
    if (writable.includes(column.key) || table.$primaryKeyColumns.includes(column)) continue;
    const value = change.after[column.key];
    // Left out of an insert: the database gives it its default.
    if (value === undefined) continue;
    if (change.before ? sameValue(column, change.before[column.key], value) : isDefault(column, value))
      continue;
    return `${table.$name}: ${what} writes the column ${column.key}, which clients may not write (writableColumns: ${writable.join(', ')})`;
  }
  return undefined;
}

/** A value an insert leaves a column at: its constant default, or null when it has no default. */
function isDefault(column: AnyColumn, value: unknown): boolean {
  const given = column.default;
  if (given === undefined) return value === null;
  // A generated default (now, random, a function, SQL) is made by whoever inserts: not comparable.
  return given.kind === 'value' && sameValue(column, given.value, value);
}

/** Equal values of one column, compared as the sync protocol encodes them (JSON by content). */
function sameValue(column: AnyColumn, a: unknown, b: unknown): boolean {
  if (resultsEqual(a ?? null, b ?? null)) return true;
  try {
    return resultsEqual(encodeValue(column.type, a ?? null), encodeValue(column.type, b ?? null));
  } catch {
    // A value the protocol cannot encode was not sent by a client: it is not the one given.
    return false;
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
