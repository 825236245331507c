import type { Driver, DriverQuery, DriverResult, DriverSession } from '../../database/driver.js';
import { SingleConnection } from '../../database/single-connection.js';
import { sqliteDialect } from '../../dialect/sqlite/sqlite-dialect.js';
import { UsageError } from '../../errors.js';
import { randomUuid } from '../../random-uuid.js';
import { reviveSqliteError, type SerializedSqliteError } from './sqlite-wasm-error.js';
import { type EngineOptions, type SqliteWasmStorage, WasmEngine } from './wasm-engine.js';
import type { OperationReply, WorkerEvent, WorkerReply, WorkerRequest } from './worker-protocol.js';

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
  /**
   * Share the database with the other tabs of this origin that open the same `name` (default:
   * true where the browser has Web Locks and BroadcastChannel). One tab's worker owns the file and
   * runs every tab's statements; when that tab closes, another takes over. Live queries in every
   * tab see every tab's commits. `false` gives this tab the file alone, and a second tab asking
   * for it gets a database in memory.
   */
  share?: boolean;
}

/** Runs queries in a Web Worker and waits for the answers, in order. */
class WorkerChannel {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve(reply: OperationReply & { ok: true }): void; reject(e: Error): void }
  >();
  private failed: Error | undefined;

  constructor(
    private readonly worker: Worker,
    onEvent: (event: WorkerEvent['event']) => void,
  ) {
    worker.addEventListener('message', (event: MessageEvent<WorkerReply | WorkerEvent>) => {
      const reply = event.data;
      if ('event' in reply) {
        onEvent(reply.event);
        return;
      }
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

  request(message: DistributiveOmit<WorkerRequest, 'id'>): Promise<OperationReply & { ok: true }> {
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
  private shared = false;
  private owner = false;
  private readonly gapListeners = new Set<() => void>();
  private readonly senders = new Map<string, BroadcastChannel>();
  /** The main-thread engine's connection (the worker has its own: see OwnedDatabase). */
  private readonly connection = new SingleConnection((q) => this.run(q));

  constructor(private readonly options: SqliteWasmOptions) {}

  /** 'opfs' or 'memory': where the database lives (known once it is open). */
  get storage(): SqliteWasmStorage {
    if (!this.where)
      throw new UsageError('the SQLite WASM driver is not open: pass it to openDatabase() first');
    return this.where;
  }

  /** The name the tabs share, when this database is shared with other tabs (see `share`). */
  get sharedName(): string | undefined {
    return this.shared ? this.options.name : undefined;
  }

  /** True while this tab's worker owns the file (always, for a database that is not shared). */
  get ownsDatabase(): boolean {
    return this.shared ? this.owner : this.where !== undefined;
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
      const share = this.options.name !== undefined && this.options.share !== false && canShare();
      if (this.options.share === true && !share) {
        throw new UsageError(
          this.options.name === undefined
            ? 'sqliteWasm({ share: true }) needs a `name`: only a named database can be shared between tabs'
            : 'sqliteWasm({ share: true }): this browser has no Web Locks or BroadcastChannel, which sharing needs; leave `share` out',
        );
      }
      // Vite and other bundlers see this pattern and bundle the worker with its imports.
      const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
      const channel = new WorkerChannel(worker, (event) => this.workerEvent(event));
      try {
        const reply = await channel.request({
          type: 'open',
          options: engineOptions,
          share: share ? { tab: randomUuid() } : undefined,
        });
        this.where = reply.storage ?? 'memory';
        this.shared = share;
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

  private workerEvent(event: WorkerEvent['event']): void {
    if (event === 'owner') this.owner = true;
    else for (const listener of [...this.gapListeners]) listener();
  }

  private run(query: DriverQuery): DriverResult | Promise<DriverResult> {
    if (!this.engine)
      throw new UsageError('the SQLite WASM driver is not open: pass it to openDatabase() first');
    return this.engine.run(query);
  }

  private workerChannel(): WorkerChannel {
    if (!this.channel)
      throw new UsageError('the SQLite WASM driver is not open: pass it to openDatabase() first');
    return this.channel;
  }

  query(query: DriverQuery): DriverResult | Promise<DriverResult> {
    if (this.engine || !this.channel) return this.connection.query(query);
    return this.channel.request({ type: 'query', query: plainQuery(query) }).then((reply) => reply.result!);
  }

  async acquire(): Promise<DriverSession> {
    if (this.engine || !this.channel) return this.connection.acquire();
    const channel = this.workerChannel();
    const { session } = await channel.request({ type: 'acquire' });
    let released = false;
    return {
      query: (query) =>
        channel.request({ type: 'query', query: plainQuery(query), session }).then((reply) => reply.result!),
      release: () => {
        if (released) return;
        released = true;
        channel.request({ type: 'release', session: session! }).catch(() => {});
      },
    };
  }

  /**
   * Shared databases only: hears what `notify` sends from the other tabs (the Database's change
   * feed uses it, so live queries re-run on other tabs' commits); `onGap` when the owner changed.
   */
  async listen(
    channel: string,
    onMessage: (payload: string) => void,
    onGap?: () => void,
  ): Promise<() => Promise<void>> {
    const name = this.sharedName;
    if (name === undefined) {
      throw new UsageError(
        'changeNotifications on SQLite WASM needs a database shared between tabs: sqliteWasm({ name }) in a browser with Web Locks',
      );
    }
    const broadcast = new BroadcastChannel(`syncline-notify:${name}:${channel}`);
    broadcast.onmessage = (event: MessageEvent<string>) => onMessage(event.data);
    if (onGap) this.gapListeners.add(onGap);
    return async () => {
      broadcast.close();
      if (onGap) this.gapListeners.delete(onGap);
    };
  }

  /** Sends `payload` to every other tab listening on `channel` (shared databases only). */
  notify(channel: string, payload: string): void {
    const name = this.sharedName;
    if (name === undefined) return;
    let broadcast = this.senders.get(channel);
    if (!broadcast) {
      broadcast = new BroadcastChannel(`syncline-notify:${name}:${channel}`);
      this.senders.set(channel, broadcast);
    }
    broadcast.postMessage(payload);
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    this.engine?.close();
    this.engine = undefined;
    this.where = undefined;
    this.owner = false;
    for (const broadcast of this.senders.values()) broadcast.close();
    this.senders.clear();
    if (channel) {
      try {
        await channel.request({ type: 'close' });
      } finally {
        channel.terminate();
      }
    }
  }
}

/** Sharing between tabs needs Web Locks (the election) and BroadcastChannel (the messages). */
function canShare(): boolean {
  return (
    typeof BroadcastChannel === 'function' &&
    typeof navigator !== 'undefined' &&
    typeof navigator.locks?.request === 'function'
  );
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
): Driver & { readonly storage: SqliteWasmStorage; readonly ownsDatabase: boolean } {
  return new SqliteWasmDriver(options);
}
