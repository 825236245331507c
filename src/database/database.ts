import type { Dialect } from '../dialect/dialect.js';
import type { CompiledQuery } from '../dialect/query-compiler.js';
import { UsageError } from '../errors.js';
import { ChangeSet } from '../live/change-set.js';
import { foreignKeyCascades } from '../live/foreign-key-cascades.js';
import { LiveQuery } from '../live/live-query.js';
import { LiveSource, type RowFilter } from '../live/live-source.js';
import type { RowChange } from '../live/row-changes.js';
import { type MigrationOptions, runMigrations } from '../migrations/run-migrations.js';
import type { Schema } from '../schema/schema.js';
import { type AnyTable, TableBase } from '../schema/table.js';
import type { SQL } from '../sql/sql.js';
import { ChangeFeed } from './change-feed.js';
import type { Driver, DriverQuery, DriverResult, DriverSession, MaybePromise } from './driver.js';
import { QueryScope } from './query-scope.js';
import { TableChanges } from './table-changes.js';
import { runTransaction, type Transaction } from './transaction.js';

export interface OpenDatabaseOptions {
  /**
   * How the schema version is handled: by default a new database gets every table, and an older
   * one runs the schema's migration steps. `{ enabled: false }` leaves the database alone.
   */
  migrations?: MigrationOptions;
  /**
   * PostgreSQL and PGlite: share table-change events with every other Database object that turns
   * this on for the same database (LISTEN/NOTIFY), so live queries in two server processes both see
   * each other's commits. Off by default, except on a database shared between browser tabs
   * (`sqliteWasm({ name })`), where live queries in every tab see every tab's commits.
   */
  changeNotifications?: boolean;
}

/**
 * A database opened on a driver, with the schema's tables ready. Queries run on any connection;
 * `transaction()` holds one connection until it ends.
 *
 * @example
 *   const db = await openDatabase(appSchema, sqlite({ path: 'app.db' }));
 *   const rows = await db.select().from(todos);
 *   await db.close();
 */
export class Database<TSchema extends Schema = Schema> extends QueryScope {
  readonly dialect: Dialect;
  private closed = false;

  constructor(
    readonly schema: TSchema,
    readonly driver: Driver,
  ) {
    super();
    this.dialect = driver.dialect;
  }

  protected runOnDriver(query: DriverQuery): MaybePromise<DriverResult> {
    if (this.closed) throw new UsageError('this database is closed; open it again with openDatabase()');
    return this.driver.query(query);
  }

  wrote(table: string, rows?: readonly RowChange[]): void {
    // Every autocommit write lands here: with nobody listening there is nothing to build.
    if (!this.hasChangeAudience()) return;
    const changes = new ChangeSet();
    changes.add(table, rows);
    this.tablesChanged(changes);
  }

  /** Live sources with a row filter, by table: writes to these tables report their rows. */
  private readonly rowFiltered = new Map<string, number>();

  wantsRowChanges(table: string): boolean {
    return (this.rowFiltered.get(table) ?? 0) > 0;
  }

  private readonly changes = new TableChanges();
  private readonly liveSources = new Map<string, LiveSource<any>>();
  private changeFeed: ChangeFeed | undefined;

  /** Tables whose rows foreign-key actions change when a table is written (built on first use). */
  private cascades: ReadonlyMap<string, readonly string[]> | undefined;

  /** Tells listeners, live queries and (when on) other processes that these tables changed. */
  private hasChangeAudience(): boolean {
    return this.changes.size > 0 || this.changeFeed !== undefined;
  }

  private tablesChanged(changes: ChangeSet): void {
    if (changes.tables.size === 0 || !this.hasChangeAudience()) return;
    // Rows that foreign-key actions changed in other tables: those tables changed too, rows unknown.
    this.cascades ??= foreignKeyCascades(this.schema);
    for (const table of [...changes.tables]) {
      for (const child of this.cascades.get(table) ?? []) changes.add(child);
    }
    this.changes.emit(changes.tables, changes.rowChanges());
    this.changeFeed?.publish(changes.tables);
  }

  /**
   * Calls `listener` after every commit that changed one of `tables` (every table when left out),
   * with the set of changed table names. Returns the unsubscribe.
   *
   * @example
   *   const stop = db.onTablesChanged([todos], (tables) => console.log('changed', [...tables]));
   */
  onTablesChanged(
    tables: readonly (AnyTable | string)[] | undefined,
    listener: (tables: ReadonlySet<string>) => void,
  ): () => void {
    return this.changes.subscribe(tables?.map(tableName), listener);
  }

  /**
   * Reports tables changed behind syncline's back (raw SQL through another handle, a sync engine
   * applying remote rows), so live queries re-run.
   */
  notifyTablesChanged(
    tables: readonly (AnyTable | string)[],
    rows?: ReadonlyMap<string, readonly RowChange[]>,
  ): void {
    const changes = new ChangeSet();
    for (const table of tables) {
      const name = tableName(table);
      changes.add(name, rows?.get(name));
    }
    this.tablesChanged(changes);
  }

  /** @internal The shared live source of a compiled query (identical queries share one). */
  liveSource<T>(
    compiled: CompiledQuery,
    execute: () => Promise<T>,
    create = true,
    rowFilter?: RowFilter,
  ): LiveSource<T> | undefined {
    const key = `${compiled.sql}\u0000${stableKey(compiled.params)}`;
    let source = this.liveSources.get(key) as LiveSource<T> | undefined;
    if (!source && create) {
      if (this.closed) throw new UsageError('this database is closed; open it again with openDatabase()');
      const filtered = rowFilter?.table;
      if (filtered) this.rowFiltered.set(filtered, (this.rowFiltered.get(filtered) ?? 0) + 1);
      const created: LiveSource<T> = new LiveSource<T>(
        compiled.tables,
        execute,
        this.changes,
        () => {
          if (this.liveSources.get(key) === created) this.liveSources.delete(key);
          if (filtered) this.rowFiltered.set(filtered, (this.rowFiltered.get(filtered) ?? 1) - 1);
        },
        rowFilter,
      );
      source = created;
      this.liveSources.set(key, source);
    }
    return source;
  }

  /**
   * Watches raw SQL: it names the tables it reads, since raw text cannot be analysed.
   *
   * @example
   *   const live = db.watch<{ n: number }>(sql`select count(*) as n from ${todos}`, { tables: [todos] });
   */
  watch<TRow = Record<string, unknown>>(
    query: SQL<unknown>,
    options: { tables: readonly (AnyTable | string)[] },
  ): LiveQuery<TRow[]> {
    if (!options?.tables || options.tables.length === 0) {
      throw new UsageError('watch(sql`...`) needs { tables: [...] }: the tables the query reads');
    }
    const compiled = this.dialect.compiler.compile({ kind: 'raw', chunks: [query.node] });
    const tables = options.tables.map(tableName);
    return new LiveQuery((create) =>
      this.liveSource({ ...compiled, tables }, () => this.execute<TRow>(query), create),
    );
  }

  /** @internal Starts sharing change events with other Database objects on the same PostgreSQL. */
  async startChangeFeed(): Promise<void> {
    this.changeFeed = await ChangeFeed.start(
      this.driver,
      (tables) => this.changes.emit(tables, undefined),
      // After a gap in notifications, anything may have changed.
      () => new Set(this.schema.tableList.map((t) => t.$name)),
    );
  }

  /**
   * Runs `fn` in a transaction: commits when it resolves, rolls back when it throws (and rethrows).
   * `tx.transaction()` inside nests a savepoint.
   */
  async transaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<R> {
    if (this.closed) throw new UsageError('this database is closed; open it again with openDatabase()');
    const session: DriverSession = await this.driver.acquire();
    let broken = false;
    try {
      const { result, written } = await runTransaction(
        session,
        this.dialect,
        fn,
        () => {
          broken = true;
        },
        this,
      );
      this.tablesChanged(written);
      return result;
    } finally {
      session.release(broken);
    }
  }

  /** Closes the driver's connections. Queries after this fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const source of [...this.liveSources.values()]) source.stop();
    this.liveSources.clear();
    this.changes.clear();
    await this.changeFeed?.stop();
    this.changeFeed = undefined;
    await this.driver.close();
  }
}

/**
 * Opens a database on a driver and brings it to the schema's version: a new database gets every
 * table, index and constraint; an older one runs the schema's migration steps in order.
 *
 * @example
 *   const db = await openDatabase(appSchema, sqlite({ path: 'app.db' }));
 *   const server = await openDatabase(appSchema, postgres({ connectionString: process.env.DATABASE_URL }));
 */
export async function openDatabase<TSchema extends Schema>(
  schema: TSchema,
  driver: Driver,
  options: OpenDatabaseOptions = {},
): Promise<Database<TSchema>> {
  await driver.open();
  const db = new Database(schema, driver);
  if (options.changeNotifications ?? driver.sharedName !== undefined) {
    try {
      await db.startChangeFeed();
    } catch (error) {
      await driver.close();
      throw error;
    }
  }
  if (options.migrations?.enabled !== false) {
    try {
      await runMigrations(db as Database, options.migrations);
    } catch (error) {
      await driver.close();
      throw error;
    }
  }
  return db;
}

function tableName(table: AnyTable | string): string {
  if (typeof table === 'string') return table;
  if (table instanceof TableBase) return table.$name;
  throw new UsageError('expected a table or a table name');
}

/** A key for parameters that tells apart values JSON would merge (bigint, Date, bytes). */
function stableKey(params: readonly unknown[]): string {
  return JSON.stringify(params, (_key, value) => {
    if (typeof value === 'bigint') return `${value}n`;
    if (value instanceof Uint8Array) return `bytes:${Array.from(value).join(',')}`;
    return value;
  });
}
