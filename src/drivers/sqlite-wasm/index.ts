import type { Driver, DriverQuery, DriverResult, DriverSession } from '../../database/driver.js';
import { SingleConnection } from '../../database/single-connection.js';
import { sqliteDialect } from '../../dialect/sqlite/sqlite-dialect.js';
import { UsageError } from '../../errors.js';
import { reviveSqliteError, type SerializedSqliteError } from './sqlite-wasm-error.js';
import { type EngineOptions, type SqliteWasmStorage, WasmEngine } from './wasm-engine.js';
import type { WorkerReply, WorkerRequest } from './worker-protocol.js';

export { SqliteWasmError } from './sqlite-wasm-error.js';
export type { SqliteWasmStorage } from './wasm-engine.js';

export interface SqliteWasmOptions {
  /**
   * The database's file name in the origin private file system (OPFS), where it survives reloads.
   * Left out, the database is in memory. Where the browser has no OPFS (or another tab holds it),
   * the database is in memory too, and `storage` says so.
   */
  name?: string;
  /**
   * Run SQLite in a dedicated Web Worker (default: wherever `Worker` exists). OPFS needs the
   * worker; without it the database is in memory, on the calling thread.
   */
  worker?: boolean;
  /** Enforce foreign keys (default true). */
  foreignKeys?: boolean;
  /** How many prepared statements to keep (default 500). */
  statementCacheSize?: number;
  /**
   * How durable a commit to OPFS is: 'full' (default) flushes the write-ahead log at every
   * commit; 'normal' leaves that to the browser (SQLite's `synchronous = NORMAL` in WAL mode). A
   * commit then survives the tab or the browser crashing but may be lost, never corrupted, when
   * the system crashes or loses power; in return it no longer waits for a flush of OPFS, which
   * takes 2 to 20 ms in Chromium.
   */
  synchronous?: 'full' | 'normal';
}

/** Runs queries in a Web Worker and waits for the answers, in order. */
class WorkerChannel {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve(reply: WorkerReply & { ok: true }): void; reject(e: Error): void }
  >();
  private failed: Error | undefined;

  constructor(private readonly worker: Worker) {
    worker.addEventListener('message', (event: MessageEvent<WorkerReply>) => {
      const reply = event.data;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply);
      else if ('code' in reply.error) waiter.reject(reviveSqliteError(reply.error as SerializedSqliteError));
      else waiter.reject(new Error(`SQLite WASM worker: ${reply.error.message}`));
    });
    worker.addEventListener('error', (event: ErrorEvent) => {
      this.failAll(new Error(`SQLite WASM worker failed: ${event.message || 'it could not be loaded'}`));
    });
  }

  request(message: DistributiveOmit<WorkerRequest, 'id'>): Promise<WorkerReply & { ok: true }> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  private failAll(error: Error): void {
    this.failed = error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  terminate(): void {
    this.worker.terminate();
    this.failAll(new UsageError('the SQLite WASM driver is closed'));
  }
}

type DistributiveOmit<T, K extends keyof any> = T extends unknown ? Omit<T, K> : never;

class SqliteWasmDriver implements Driver {
  readonly dialect = sqliteDialect;
  readonly name = 'sqlite-wasm';
  private channel: WorkerChannel | undefined;
  private engine: WasmEngine | undefined;
  private where: SqliteWasmStorage | undefined;
  private readonly connection = new SingleConnection((q) => this.run(q));

  constructor(private readonly options: SqliteWasmOptions) {}

  /** 'opfs' or 'memory': where the database lives (known once it is open). */
  get storage(): SqliteWasmStorage {
    if (!this.where)
      throw new UsageError('the SQLite WASM driver is not open: pass it to openDatabase() first');
    return this.where;
  }

  async open(): Promise<void> {
    if (this.where) return;
    const engineOptions: EngineOptions = {
      name: this.options.name,
      foreignKeys: this.options.foreignKeys !== false,
      statementCacheSize: this.options.statementCacheSize ?? 500,
      synchronous: this.options.synchronous ?? 'full',
    };
    const useWorker = this.options.worker ?? typeof Worker !== 'undefined';
    if (useWorker) {
      if (typeof Worker === 'undefined') {
        throw new UsageError(
          'sqliteWasm({ worker: true }): this runtime has no Web Worker; leave `worker` out to run in memory here',
        );
      }
      // Vite and other bundlers see this pattern and bundle the worker with its imports.
      const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
      const channel = new WorkerChannel(worker);
      try {
        const reply = await channel.request({ type: 'open', options: engineOptions });
        this.where = reply.storage ?? 'memory';
        this.channel = channel;
      } catch (error) {
        channel.terminate();
        throw error;
      }
      return;
    }
    this.engine = await WasmEngine.open(engineOptions);
    this.where = this.engine.storage;
  }

  private run(query: DriverQuery): DriverResult | Promise<DriverResult> {
    if (this.engine) return this.engine.run(query);
    if (!this.channel)
      throw new UsageError('the SQLite WASM driver is not open: pass it to openDatabase() first');
    return this.channel.request({ type: 'query', query: plainQuery(query) }).then((reply) => reply.result!);
  }

  query(query: DriverQuery): DriverResult | Promise<DriverResult> {
    return this.connection.query(query);
  }

  acquire(): Promise<DriverSession> {
    return this.connection.acquire();
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    this.engine?.close();
    this.engine = undefined;
    this.where = undefined;
    if (channel) {
      try {
        await channel.request({ type: 'close' });
      } finally {
        channel.terminate();
      }
    }
  }
}

/** A DriverQuery as structured clone takes it (the builder may hand over frozen or class objects). */
function plainQuery(query: DriverQuery): DriverQuery {
  return {
    sql: query.sql,
    params: query.params.slice(),
    arrayMode: query.arrayMode,
    needsBigInt: query.needsBigInt,
  };
}

/**
 * SQLite in the browser on the official WASM build (@sqlite.org/sqlite-wasm): in a Web Worker, kept
 * in the origin private file system (OPFS) under `name` where the browser has it, in memory
 * otherwise (`driver.storage` says which). Also runs on Node, in memory, without a worker.
 *
 * @example
 *   const driver = sqliteWasm({ name: 'todo.db' });
 *   const db = await openDatabase(appSchema, driver);
 *   console.log(driver.storage); // 'opfs'
 */
export function sqliteWasm(
  options: SqliteWasmOptions = {},
): Driver & { readonly storage: SqliteWasmStorage } {
  return new SqliteWasmDriver(options);
}
