/// <reference lib="webworker" />
import type { DriverSession } from '../../database/driver.js';
import { SingleConnection } from '../../database/single-connection.js';
import { SqliteWasmError } from './sqlite-wasm-error.js';
import type { WasmEngine } from './wasm-engine.js';
import type { DatabaseOperation, OperationReply } from './worker-protocol.js';

/** The lock a tab's worker holds for as long as the tab lives: its release means the tab is gone. */
export function tabLockName(tab: string): string {
  return `syncline-tab:${tab}`;
}

interface HeldSession {
  readonly session: DriverSession;
  readonly tab: string;
  /** Ends the watch on the holding tab's life. */
  readonly unwatch: AbortController;
}

/**
 * The database as its owning worker runs it for every tab: statements from any tab take turns on
 * the one SQLite connection, and a transaction holds it for its tab until released. A tab that
 * dies holding it (or while its request for it waited) does not keep it: its worker's tab lock
 * comes free, and the open transaction is rolled back.
 */
export class OwnedDatabase {
  private readonly connection: SingleConnection;
  private readonly sessions = new Map<string, HeldSession>();
  private nextSession = 1;
  private closed = false;

  constructor(
    private readonly engine: WasmEngine,
    /** This worker's own tab, which needs no watch. */
    private readonly self: string,
  ) {
    this.connection = new SingleConnection((query) => this.engine.run(query));
  }

  get storage() {
    return this.engine.storage;
  }

  /** Runs one tab's operation and says how it went (never throws). */
  async perform(tab: string, op: DatabaseOperation): Promise<OperationReply> {
    try {
      if (this.closed) throw new Error('the database is closing');
      switch (op.type) {
        case 'query': {
          if (op.session === undefined) return { ok: true, result: await this.connection.query(op.query) };
          const held = this.sessions.get(op.session);
          if (!held || held.tab !== tab) throw lostTransaction();
          return { ok: true, result: await held.session.query(op.query) };
        }
        case 'acquire':
          return { ok: true, session: await this.hold(tab) };
        case 'release':
          this.release(op.session);
          return { ok: true };
      }
    } catch (error) {
      return { ok: false, error: serializeError(error) };
    }
  }

  private async hold(tab: string): Promise<string> {
    const session = await this.connection.acquire();
    const id = `${this.self}:${this.nextSession++}`;
    const unwatch = new AbortController();
    this.sessions.set(id, { session, tab, unwatch });
    if (tab !== this.self) {
      // Granted only once the tab's worker is gone; aborted when the tab releases in time.
      navigator.locks
        .request(tabLockName(tab), { signal: unwatch.signal }, () => this.release(id))
        .catch(() => {});
    }
    return id;
  }

  /** Gives the connection back, rolling back what the transaction left open. */
  private release(id: string): void {
    const held = this.sessions.get(id);
    if (!held) return;
    this.sessions.delete(id);
    held.unwatch.abort();
    try {
      if (this.engine.inTransaction) this.engine.run(ROLLBACK);
    } finally {
      held.session.release();
    }
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.sessions.keys()]) this.release(id);
    this.engine.close();
  }
}

const ROLLBACK = { sql: 'ROLLBACK', params: [], arrayMode: false, needsBigInt: false } as const;

function lostTransaction(): SqliteWasmError {
  return new SqliteWasmError(
    'this transaction was lost: the tab that owned the database closed while it was open, and SQLite rolled it back; run it again',
    'SQLITE_ABORT',
    4,
  );
}

/** An error as it crosses a worker or tab boundary (SQLite's code kept). */
export function serializeError(error: unknown): SerializedErrorShape {
  if (error instanceof SqliteWasmError) {
    return { message: error.message, code: error.code, resultCode: error.resultCode };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

type SerializedErrorShape = Extract<OperationReply, { ok: false }>['error'];
