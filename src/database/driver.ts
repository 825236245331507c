import type { Dialect } from '../dialect/dialect.js';

/** One statement for a driver to run. */
export interface DriverQuery {
  readonly sql: string;
  readonly params: readonly unknown[];
  /** Rows as arrays in select-list order (the builder's path) rather than objects (raw SQL). */
  readonly arrayMode: boolean;
  /** Return 64-bit integers exactly (SQLite: as bigint). */
  readonly needsBigInt: boolean;
  /** Set for statements from `prepare()`: the driver may keep them prepared under this name. */
  readonly name?: string;
  /** A statement whose text repeats by shape (a plain insert): the driver may keep it prepared. */
  readonly keepPrepared?: boolean;
}

export interface DriverResult {
  readonly rows: unknown[];
  /** Rows written by INSERT / UPDATE / DELETE, or rows returned. */
  readonly rowCount: number;
}

/** A value, or a promise of it: what a synchronous or an asynchronous driver returns. */
export type MaybePromise<T> = T | Promise<T>;

/** A connection held for a transaction until `release()`. */
export interface DriverSession {
  query(query: DriverQuery): MaybePromise<DriverResult>;
  /** Gives the connection back; `broken` drops it when the transaction could not be closed cleanly. */
  release(broken?: boolean): void;
}

/**
 * A driver is thin: it runs SQL text with parameters and returns rows. Everything else (compiling,
 * encoding, transactions, errors) is shared. A synchronous driver may return results directly.
 */
export interface Driver {
  readonly dialect: Dialect;
  /** A short name for messages and tests: 'better-sqlite3', 'node-postgres', 'pglite'. */
  readonly name: string;
  /** Opens the connection(s); called once by `openDatabase`. */
  open(): Promise<void>;
  /** Runs one statement on any connection, outside a transaction. */
  query(query: DriverQuery): MaybePromise<DriverResult>;
  /** Takes a connection for the exclusive use of one transaction. */
  acquire(): Promise<DriverSession>;
  /**
   * `acquire()` without waiting, for a synchronous driver (better-sqlite3): the connection when it
   * is free now, else undefined (then `acquire()` waits for it). Lets a transaction whose
   * statements all answer synchronously run without a microtask.
   */
  acquireNow?(): DriverSession | undefined;
  /**
   * PostgreSQL only: LISTEN on a channel on a connection of its own; resolves to the UNLISTEN.
   * Drivers without notifications leave it out.
   */
  listen?(
    channel: string,
    onMessage: (payload: string) => void,
    /** Called after the listening connection dropped and came back: notifications may be lost. */
    onGap?: () => void,
  ): Promise<() => Promise<void>>;
  /**
   * Sends a notification that `listen` hears in the other processes, for a driver whose
   * notifications are not SQL (SQLite WASM shared between tabs). PostgreSQL leaves it out: the
   * change feed sends `pg_notify` there.
   */
  notify?(channel: string, payload: string): void;
  /**
   * Set while other processes (browser tabs) use this same database at once: the name they share.
   * Databases on it then share table-change events by default, and sync clients on it elect one of
   * them to hold the connection to the server.
   */
  readonly sharedName?: string;
  /**
   * A pool's use now, for a server's metrics: connections open, idle, and queries waiting for
   * one. Drivers without a pool leave it out.
   */
  poolStats?(): { total: number; idle: number; waiting: number };
  /** Releases every connection and handle the driver opened (not those the app passed in). */
  close(): Promise<void>;
}
