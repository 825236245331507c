/// <reference lib="webworker" />
import { OwnedDatabase, serializeError, tabLockName } from './owned-database.js';
import { SqliteWasmError } from './sqlite-wasm-error.js';
import { type EngineOptions, type SqliteWasmStorage, WasmEngine } from './wasm-engine.js';
import type { DatabaseOperation, OperationReply, WorkerEvent } from './worker-protocol.js';

/** What the workers sharing one database name say to each other on their BroadcastChannel. */
type HubMessage =
  | { readonly kind: 'who' }
  | {
      readonly kind: 'owner';
      readonly tab: string;
      readonly storage: SqliteWasmStorage;
      /** When it took the database: an announcement older than the owner known is stale. */
      readonly since: number;
    }
  | {
      readonly kind: 'request';
      readonly to: string;
      readonly from: string;
      readonly id: number;
      readonly op: DatabaseOperation;
    }
  | { readonly kind: 'reply'; readonly to: string; readonly id: number; readonly reply: OperationReply };

interface Pending {
  readonly op: DatabaseOperation;
  /** The owner it was sent to; undefined while no owner is known. */
  sentTo: string | undefined;
  readonly done: (reply: OperationReply) => void;
}

/** Lets go of OPFS files a closed owner held late: a taking-over tab waits this long for them. */
const TAKEOVER_OPFS_WAIT_MS = 10_000;

/**
 * One tab's side of a database shared by every tab of the origin that opens the same name, run in
 * the tab's worker. The workers queue for a Web Lock named after the database; the one holding it
 * owns the file (OPFS access handles are exclusive) and runs every tab's statements, which the
 * others forward to it over a BroadcastChannel. When the owner's tab closes, its lock comes free
 * and the next worker in the queue opens the file and announces itself; what was committed is
 * in the file, so nothing committed is lost. A statement the old owner never answered is sent
 * again when it only reads (or takes a connection); a write is failed, since it may or may not
 * have been applied, and an open transaction fails on its next statement (SQLite rolled it back).
 */
export class SharedDatabase {
  private readonly channel: BroadcastChannel;
  private owned: OwnedDatabase | undefined;
  private owner: string | undefined;
  private ownerSince = 0;
  private storage: SqliteWasmStorage | undefined;
  private readonly pending = new Map<number, Pending>();
  private release: (() => void) | undefined;
  private closed = false;
  private ready: ((storage: SqliteWasmStorage) => void) | undefined;
  private failed: ((error: Error) => void) | undefined;

  private constructor(
    private readonly tab: string,
    private readonly options: EngineOptions & { readonly name: string },
    private readonly tell: (event: WorkerEvent) => void,
  ) {
    this.channel = new BroadcastChannel(`syncline-db:${options.name}`);
    this.channel.onmessage = (event: MessageEvent<HubMessage>) => this.heard(event.data);
  }

  /**
   * Joins the database: holds this tab's lock for the worker's life, queues for ownership, and
   * resolves with where the data lives once an owner (this worker or another) is known.
   */
  static async join(
    tab: string,
    options: EngineOptions & { readonly name: string },
    tell: (event: WorkerEvent) => void,
  ): Promise<{ shared: SharedDatabase; storage: SqliteWasmStorage }> {
    await new Promise<void>((held) => {
      navigator.locks.request(tabLockName(tab), () => {
        held();
        return new Promise<void>(() => {}); // until the worker ends
      });
    });
    const shared = new SharedDatabase(tab, options, tell);
    const storage = await new Promise<SqliteWasmStorage>((resolve, reject) => {
      shared.ready = resolve;
      shared.failed = reject;
      shared.queueForOwnership();
      shared.channel.postMessage({ kind: 'who' } satisfies HubMessage);
    });
    return { shared, storage };
  }

  get isOwner(): boolean {
    return this.owned !== undefined;
  }

  private queueForOwnership(): void {
    navigator.locks
      .request(`syncline-db:${this.options.name}`, async () => {
        if (this.closed) return;
        try {
          const engine = await WasmEngine.open({ ...this.options, opfsWaitMs: TAKEOVER_OPFS_WAIT_MS });
          this.owned = new OwnedDatabase(engine, this.tab);
        } catch (error) {
          this.failed?.(error as Error);
          return;
        }
        const wasFollower = this.owner !== undefined;
        await new Promise<void>((release) => {
          this.release = release;
          this.ownerSince = Math.max(Date.now(), this.ownerSince + 1);
          this.ownerIs(this.tab, this.owned!.storage);
          this.announce();
          this.tell({ id: 0, event: 'owner' });
          if (wasFollower) this.tell({ id: 0, event: 'gap' });
        });
      })
      .catch((error: Error) => this.failed?.(error));
  }

  private announce(): void {
    this.channel.postMessage({
      kind: 'owner',
      tab: this.tab,
      storage: this.owned!.storage,
      since: this.ownerSince,
    } satisfies HubMessage);
  }

  /** Runs one of this tab's operations, here or at the owner. */
  perform(op: DatabaseOperation): Promise<OperationReply> {
    if (this.owned) return this.owned.perform(this.tab, op);
    return new Promise((done) => {
      const id = nextRequestId++;
      const pending: Pending = { op, sentTo: undefined, done };
      this.pending.set(id, pending);
      if (this.owner !== undefined) this.send(id, pending);
    });
  }

  private send(id: number, pending: Pending): void {
    pending.sentTo = this.owner;
    this.channel.postMessage({
      kind: 'request',
      to: this.owner!,
      from: this.tab,
      id,
      op: pending.op,
    } satisfies HubMessage);
  }

  private heard(message: HubMessage): void {
    if (this.closed) return;
    switch (message.kind) {
      case 'who':
        if (this.owned) this.announce();
        return;
      case 'owner':
        // A late answer of an owner gone since (messages of two senders may cross) is ignored.
        if (message.tab !== this.owner && message.since > this.ownerSince) {
          const changed = this.owner !== undefined;
          this.ownerSince = message.since;
          this.ownerIs(message.tab, message.storage);
          if (changed) this.tell({ id: 0, event: 'gap' });
        }
        return;
      case 'request':
        if (message.to !== this.tab) return;
        if (!this.owned) return; // no longer the owner: the tab hears of the next one
        void this.owned.perform(message.from, message.op).then((reply) => {
          if (this.closed) return;
          this.channel.postMessage({
            kind: 'reply',
            to: message.from,
            id: message.id,
            reply,
          } satisfies HubMessage);
        });
        return;
      case 'reply': {
        if (message.to !== this.tab) return;
        const pending = this.pending.get(message.id);
        if (!pending) return;
        this.pending.delete(message.id);
        pending.done(message.reply);
        return;
      }
    }
  }

  /**
   * A new owner: requests the old one left unanswered are sent again where that is safe, failed
   * where it is not; requests that waited for an owner go out now.
   */
  private ownerIs(tab: string, storage: SqliteWasmStorage): void {
    const previous = this.owner;
    this.owner = tab;
    this.storage ??= storage;
    this.ready?.(storage);
    this.ready = undefined;
    for (const [id, pending] of [...this.pending]) {
      if (pending.sentTo !== undefined && pending.sentTo !== previous) continue;
      if (pending.sentTo !== undefined && !safeToRepeat(pending.op)) {
        this.pending.delete(id);
        pending.done(ownerLost(pending.op));
        continue;
      }
      if (tab === this.tab) {
        this.pending.delete(id);
        void this.owned!.perform(this.tab, pending.op).then(pending.done);
      } else this.send(id, pending);
    }
  }

  close(): void {
    this.closed = true;
    this.owned?.close();
    this.owned = undefined;
    this.release?.();
    this.channel.close();
    for (const pending of this.pending.values()) {
      pending.done({ ok: false, error: { message: 'the SQLite WASM driver is closed' } });
    }
    this.pending.clear();
  }
}

let nextRequestId = 1;

/** Reads and the taking of a connection can run again at a new owner; writes cannot. */
function safeToRepeat(op: DatabaseOperation): boolean {
  if (op.type === 'acquire') return true;
  if (op.type === 'release') return false;
  return op.session === undefined && /^\s*select\b/i.test(op.query.sql);
}

function ownerLost(op: DatabaseOperation): OperationReply {
  // A released transaction is gone with the old owner anyway: nothing to report.
  if (op.type === 'release') return { ok: true };
  const message =
    op.type === 'query' && op.session !== undefined
      ? 'this transaction was lost: the tab that owned the database closed while it was open, and SQLite rolled it back; run it again'
      : 'the tab that owned the database closed before it answered: this write may or may not have been applied; read the rows again before repeating it';
  return { ok: false, error: serializeError(new SqliteWasmError(message, 'SQLITE_ABORT', 4)) };
}
