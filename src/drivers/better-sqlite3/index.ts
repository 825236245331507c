import BetterSqlite3 from 'better-sqlite3';
import type { Driver, DriverQuery, DriverResult, DriverSession } from '../../database/driver.js';
import { SingleConnection } from '../../database/single-connection.js';
import { sqliteDialect } from '../../dialect/sqlite/sqlite-dialect.js';
import { UsageError } from '../../errors.js';

export interface SqliteOptions {
  /** A file path, or ':memory:' (the default). */
  path?: string;
  /** A better-sqlite3 handle the app owns; syncline never closes it. */
  database?: BetterSqlite3.Database;
  /** Write-ahead logging for file databases (default true). */
  wal?: boolean;
  /** Enforce foreign keys (default true). */
  foreignKeys?: boolean;
  /** How many prepared statements to keep (default 500). */
  statementCacheSize?: number;
}

/** A prepared statement and the read modes last set on it (setting a mode is a native call). */
interface Statement {
  readonly stmt: BetterSqlite3.Statement<unknown[], unknown>;
  readonly reader: boolean;
  arrayMode: boolean;
  bigInts: boolean;
}

function toDriverParam(value: unknown): unknown {
  // better-sqlite3 binds Buffers as blobs; a plain Uint8Array is viewed as one without copying.
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return value;
}

class BetterSqlite3Driver implements Driver {
  readonly dialect = sqliteDialect;
  readonly name = 'better-sqlite3';
  private db: BetterSqlite3.Database | undefined;
  private readonly statements = new Map<string, Statement>();
  private readonly connection = new SingleConnection((q) => this.run(q));

  constructor(private readonly options: SqliteOptions) {}

  async open(): Promise<void> {
    if (this.db) return;
    const db = this.options.database ?? new BetterSqlite3(this.options.path ?? ':memory:');
    if (this.options.wal !== false && db.name !== ':memory:' && db.name !== '')
      db.pragma('journal_mode = WAL');
    db.pragma(`foreign_keys = ${this.options.foreignKeys === false ? 'OFF' : 'ON'}`);
    // LIKE is case-sensitive on PostgreSQL; make SQLite agree so one query means the same on both.
    db.pragma('case_sensitive_like = ON');
    this.db = db;
  }

  /** The better-sqlite3 handle, for what syncline does not cover. */
  get handle(): BetterSqlite3.Database {
    if (!this.db) throw new UsageError('the SQLite driver is not open: pass it to openDatabase() first');
    return this.db;
  }

  private statement(sql: string): Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      const prepared = this.handle.prepare(sql);
      stmt = { stmt: prepared, reader: prepared.reader, arrayMode: false, bigInts: false };
      const limit = this.options.statementCacheSize ?? 500;
      if (this.statements.size >= limit) this.statements.delete(this.statements.keys().next().value!);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  private run(query: DriverQuery): DriverResult {
    const stmt = this.statement(query.sql);
    const params = query.params;
    for (let i = 0; i < params.length; i++) {
      const value = params[i];
      if (typeof value === 'object' && value instanceof Uint8Array) {
        return this.runWith(stmt, query, params.map(toDriverParam));
      }
    }
    return this.runWith(stmt, query, params);
  }

  private runWith(s: Statement, query: DriverQuery, params: readonly unknown[]): DriverResult {
    if (s.reader) {
      if (s.bigInts !== query.needsBigInt) s.stmt.safeIntegers((s.bigInts = query.needsBigInt));
      if (s.arrayMode !== query.arrayMode) s.stmt.raw((s.arrayMode = query.arrayMode));
      const rows = s.stmt.all(...params) as unknown[];
      return { rows, rowCount: rows.length };
    }
    const info = s.stmt.run(...params);
    return { rows: [], rowCount: info.changes };
  }

  query(query: DriverQuery): DriverResult | Promise<DriverResult> {
    return this.connection.query(query);
  }

  acquire(): Promise<DriverSession> {
    return this.connection.acquire();
  }

  acquireNow(): DriverSession | undefined {
    return this.connection.acquireNow();
  }

  async close(): Promise<void> {
    this.statements.clear();
    if (this.db && !this.options.database) this.db.close();
    this.db = undefined;
  }
}

/**
 * SQLite on Node through better-sqlite3: a file, or in memory. WAL and foreign keys are on by
 * default, and prepared statements are cached by their SQL.
 *
 * @example
 *   const db = await openDatabase(appSchema, sqlite({ path: 'app.db' }));
 *   const mem = await openDatabase(appSchema, sqlite());
 */
export function sqlite(
  options: SqliteOptions | string = {},
): Driver & { readonly handle: BetterSqlite3.Database } {
  return new BetterSqlite3Driver(typeof options === 'string' ? { path: options } : options);
}
