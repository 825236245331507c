import type { PreparedStatement, Sqlite3Static, Database as WasmDatabase } from '@sqlite.org/sqlite-wasm';
import type { DriverQuery, DriverResult } from '../../database/driver.js';
import { SqliteWasmError } from './sqlite-wasm-error.js';

/** Where a database lives: the origin private file system (kept across reloads), or memory. */
export type SqliteWasmStorage = 'opfs' | 'memory';

/** What the engine needs to open a database (the options that reach the worker). */
export interface EngineOptions {
  /** The file name in OPFS; in memory when left out. */
  readonly name?: string;
  readonly foreignKeys: boolean;
  readonly statementCacheSize: number;
  /** SQLite's `synchronous` for an OPFS database: 'full' (the default) or 'normal'. */
  readonly synchronous?: 'full' | 'normal';
  /**
   * How long to keep trying for the OPFS files another worker may still hold, in ms (default 1 s).
   * A tab taking over a shared database waits longer: the closing owner lets go of them late.
   */
  readonly opfsWaitMs?: number;
}

/**
 * Loads the SQLite WASM module once per thread. Emscripten's print hooks are quieted: the library
 * logs every failed step to the console, and syncline reports those errors itself.
 */
let loading: Promise<Sqlite3Static> | undefined;
export function loadSqliteWasm(): Promise<Sqlite3Static> {
  loading ??= import('@sqlite.org/sqlite-wasm').then((module) =>
    (module.default as unknown as (config: object) => Promise<Sqlite3Static>)({
      print: () => {},
      printErr: () => {},
    }),
  );
  return loading;
}

type OpfsPool = Awaited<ReturnType<Sqlite3Static['installOpfsSAHPoolVfs']>>;

/**
 * The OPFS pool for one database name: a VFS and a directory of its own, so databases of other
 * names open beside it (in other workers too), while a second tab opening the same name cannot
 * take it (the pool's files are held exclusively) and ends up in memory.
 */
async function opfsPool(sqlite3: Sqlite3Static, name: string, waitMs: number): Promise<OpfsPool | undefined> {
  if (typeof sqlite3.installOpfsSAHPoolVfs !== 'function') return undefined;
  const id = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  // A page that just reloaded may still hold the files for a moment: try a few times.
  for (let attempt = 0; attempt < Math.max(1, Math.ceil(waitMs / 250)); attempt++) {
    try {
      return await sqlite3.installOpfsSAHPoolVfs({
        name: `syncline-${id}`,
        directory: `.syncline/${id}`,
        forceReinitIfPreviouslyFailed: true,
      } as Parameters<Sqlite3Static['installOpfsSAHPoolVfs']>[0]);
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  return undefined;
}

/** Turns the library's error into ours: the extended code name, and SQLite's own words. */
function sqliteError(sqlite3: Sqlite3Static, error: unknown): SqliteWasmError | unknown {
  const rc = (error as { resultCode?: unknown })?.resultCode;
  if (typeof rc !== 'number') return error;
  const code = sqlite3.capi.sqlite3_js_rc_str(rc) ?? `SQLITE_${rc}`;
  // "SQLITE_CONSTRAINT_UNIQUE: sqlite3 result code 2067: UNIQUE constraint failed: t.b"
  const message = String((error as Error).message).replace(/^[A-Z_]+: sqlite3 result code \d+: /, '');
  return new SqliteWasmError(message, code, rc);
}

/**
 * One SQLite WASM database and its prepared statements: runs a DriverQuery and returns plain
 * rows. The same code runs inside the worker and, where there is no worker, on the main thread.
 */
export class WasmEngine {
  private readonly statements = new Map<string, PreparedStatement>();

  private constructor(
    private readonly sqlite3: Sqlite3Static,
    private readonly db: WasmDatabase,
    readonly storage: SqliteWasmStorage,
    private readonly cacheSize: number,
  ) {}

  /** Opens `options.name` in OPFS when the pool is there, else a database in memory. */
  static async open(options: EngineOptions): Promise<WasmEngine> {
    const sqlite3 = await loadSqliteWasm();
    const opfs = options.name ? await opfsPool(sqlite3, options.name, options.opfsWaitMs ?? 1000) : undefined;
    const db = opfs ? new opfs.OpfsSAHPoolDb(`/${options.name}`) : new sqlite3.oo1.DB(':memory:', 'c');
    // The pool's files are this worker's alone, so SQLite may hold its lock for good, which lets
    // it keep a write-ahead log without shared memory (the pool has none). In the default mode
    // each commit created, wrote, flushed and deleted a rollback journal, every step a flush of
    // OPFS: a one-row write took 12 to 20 ms in Chromium, about 2 to 4 now, commits as durable
    // (synchronous FULL, unless `synchronous: 'normal'` asks for no flush at commit). WAL is kept
    // in the file: an engine that opens it must set exclusive locking first, as this one does
    // before anything reads it.
    if (opfs) {
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      db.exec('PRAGMA journal_mode = WAL');
      db.exec(`PRAGMA synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    }
    db.exec(`PRAGMA foreign_keys = ${options.foreignKeys ? 'ON' : 'OFF'}`);
    // LIKE is case-sensitive on PostgreSQL; make SQLite agree so one query means the same on both.
    db.exec('PRAGMA case_sensitive_like = ON');
    return new WasmEngine(sqlite3, db, opfs ? 'opfs' : 'memory', options.statementCacheSize);
  }

  private statement(sql: string): PreparedStatement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (this.statements.size >= this.cacheSize) {
        const [oldest, old] = this.statements.entries().next().value!;
        this.statements.delete(oldest);
        old.finalize();
      }
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /** True while a transaction is open (BEGIN without its COMMIT or ROLLBACK yet). */
  get inTransaction(): boolean {
    return this.sqlite3.capi.sqlite3_get_autocommit(this.db.pointer!) === 0;
  }

  /** Runs one statement; throws `SqliteWasmError` for what SQLite refuses. */
  run(query: DriverQuery): DriverResult {
    let stmt: PreparedStatement;
    try {
      stmt = this.statement(query.sql);
    } catch (error) {
      throw sqliteError(this.sqlite3, error);
    }
    const rows: unknown[] = [];
    try {
      if (query.params.length > 0) this.bind(stmt, query.params);
      if (stmt.columnCount === 0) {
        stmt.step();
        return { rows, rowCount: this.db.changes() as number };
      }
      while (stmt.step()) rows.push(query.arrayMode ? stmt.get([]) : stmt.get({}));
      return { rows, rowCount: rows.length };
    } catch (error) {
      throw sqliteError(this.sqlite3, error);
    } finally {
      try {
        stmt.reset(true);
      } catch {
        // reset() repeats the step's error, already thrown above.
      }
    }
  }

  /**
   * Binds the parameters. The library binds every integral number as a 64-bit integer, which
   * turns one past 2^53 (1.7976931348623157e308, say) into a wrong or zero integer; those are
   * doubles, so they are bound as doubles, as better-sqlite3 does.
   */
  private bind(stmt: PreparedStatement, params: readonly unknown[]): void {
    let plain = true;
    for (const value of params) {
      if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) plain = false;
    }
    if (plain) {
      stmt.bind(params as never);
      return;
    }
    stmt.clearBindings();
    params.forEach((value, i) => {
      if (typeof value === 'number' && !Number.isSafeInteger(value) && Number.isInteger(value)) {
        const rc = this.sqlite3.capi.sqlite3_bind_double(stmt.pointer!, i + 1, value);
        if (rc !== 0) throw new this.sqlite3.SQLite3Error(rc);
      } else stmt.bind(i + 1, value as never);
    });
  }

  close(): void {
    for (const stmt of this.statements.values()) stmt.finalize();
    this.statements.clear();
    this.db.close();
  }
}
