import { is } from '../../entity.js';
import { SyncProtocolError } from '../../errors.js';
import type { ClientColumns } from '../protocol/client-columns.js';
import {
  type AckMessage,
  type ChangesMessage,
  MAX_FETCH_ROWS,
  type MessageLimits,
  PROTOCOL_VERSION,
  parseServerFrame,
  type RowsMessage,
  type ServerFrame,
  type ServerMessage,
  type ShapeJson,
  SNAPSHOT_COLUMNS_FORMAT,
  type SnapshotChunk,
  type UnsubscribedMessage,
} from '../protocol/messages.js';
import { PUSH_FAILED } from '../protocol/push-failed.js';
import type { RejectedEvent } from './ack-apply.js';
import { Backoff } from './backoff.js';
import { Connection } from './connection.js';
import type { LocalReplica } from './local-replica.js';
import { type ChangesApplied, CursorGapError, type RowKey } from './remote-apply.js';
import { serverError, stopsClient, TOKEN_EXPIRED } from './server-error.js';
import { findShape, type ShapeSubscriptions } from './shape-subscriptions.js';
import type { SnapshotApplier, SnapshotProgress } from './snapshot-apply.js';
import type { ResolvedSyncOptions } from './sync-options.js';
import type { SyncTraffic } from './sync-stats.js';
import type { WebSocketConstructor } from './websocket.js';
import { WriteTooLargeError } from './write-too-large.js';

/**
 * What a session tells the client it belongs to: errors and events to emit, tables to report to
 * live queries, and the progress of the cursor and the outbox for `caughtUp()` and `flush()`.
 *
 * @example
 *   const session = new SyncSession(host, WebSocket, token);
 */
export interface SessionHost {
  readonly replica: LocalReplica;
  readonly options: ResolvedSyncOptions;
  /** The shapes the client wants now (`syncClient()`'s and `subscribe()`'s). */
  readonly shapes: ShapeSubscriptions;
  /** The columns of the synced tables, as the hello tells the server (`clientColumns`). */
  readonly columns: ClientColumns;
  /** Counts the bytes and messages of every connection (`sync.stats()`). */
  readonly traffic: SyncTraffic;
  /** The local transactions waiting, as last counted (undefined before the first count). */
  pendingTransactions(): number | undefined;
  error(error: Error): void;
  progress(progress: SnapshotProgress): void;
  rejected(event: RejectedEvent): void;
  /** Tables written from the server's side, to report to live queries. */
  remoteTables(tables: ReadonlySet<string>): void;
  cursorMoved(): void;
  pong(id: string | undefined, position: string | undefined): void;
  /** An ack settled part of the outbox; `firstSeq` is what is left (undefined: empty). */
  outboxSettled(firstSeq: number | undefined): void;
}

/**
 * How a session ended: `error` is why (undefined when closed on purpose), `fatal` means the
 * server refused the client for good (do not retry), `welcomed` whether it got that far, and
 * `tokenExpired` that the server closed it because the token expired: routine, the next attempt
 * gets a new token, so it is not reported as an error.
 *
 * @example
 *   const { error, fatal } = await session.ended;
 *   if (!fatal) await sleep(backoff.next());
 */
export interface SessionEnd {
  readonly error: Error | undefined;
  readonly fatal: boolean;
  readonly welcomed: boolean;
  readonly tokenExpired: boolean;
}

const KEEP_ALIVE_ID = 'keep-alive';

/** Shape changes (`subscribe`, `unsubscribe`) a session has unanswered at once (the server's limit). */
const MAX_SHAPE_REQUESTS = 4;

/**
 * One connection's life, from `hello` to close: the handshake, then every server message applied
 * in arrival order, one at a time (snapshot chunks, changes, acks), and pushes of the outbox, one
 * in flight at a time, from the start of the outbox after each welcome. A bad message drops the
 * connection (the client reconnects); a fatal server error ends the session for good.
 *
 * @example
 *   const session = new SyncSession(host, WebSocket, token);
 *   if (await session.ready) session.requestPush();
 *   const end = await session.ended;
 */
export class SyncSession {
  /** Resolves true once welcomed, false when the connection closed first. */
  readonly ready: Promise<boolean>;
  /** Resolves when the connection has closed and the session's database work is done. */
  readonly ended: Promise<SessionEnd>;
  private readonly connection: Connection;
  private welcomed = false;
  private limits: MessageLimits | undefined;
  private welcomeStamp: string | undefined;
  private snapshot: SnapshotApplier | undefined;
  /** The shapes of this connection's hello, and the shapes the server sends now. */
  private helloShapes: readonly ShapeJson[] = [];
  private serverShapes: readonly ShapeJson[] = [];
  /** The hello resumed from a cursor (no snapshot of its shapes comes). */
  private resumed = false;
  /** Shape changes sent and not answered yet, by shape id. */
  private readonly requested = new Map<string, 'subscribe' | 'unsubscribe'>();
  /** Snapshots of shapes added to this connection, by shape id. */
  private readonly adding = new Map<string, SnapshotApplier>();
  private inbox: Promise<void> = Promise.resolve();
  /** Messages in `inbox` not handled yet: at 0 a `changes` message may be applied at once. */
  private queued = 0;
  private pushTask: Promise<void> = Promise.resolve();
  private pushRunning = false;
  private pushInFlight = false;
  private pushWanted = false;
  /** Pushes the server failed on are sent again after this backoff. */
  private readonly pushBackoff: Backoff;
  private pushRetry: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private fatal: Error | undefined;
  private tokenExpired = false;
  private resolveReady!: (welcomed: boolean) => void;

  constructor(
    private readonly host: SessionHost,
    WebSocketClass: WebSocketConstructor,
    private readonly token: string | undefined,
  ) {
    this.pushBackoff = new Backoff(host.options.backoff);
    this.ready = new Promise((resolve) => {
      this.resolveReady = resolve;
    });
    let resolveEnded!: (end: SessionEnd) => void;
    this.ended = new Promise((resolve) => {
      resolveEnded = resolve;
    });
    this.connection = new Connection(WebSocketClass, host.options.url, host.options.pingIntervalMs, {
      open: () => this.hello(),
      message: (data) => {
        host.traffic.received(data);
        this.receive(data);
      },
      sent: (text) => host.traffic.sent(text),
      keepAlive: () => this.sendPing(KEEP_ALIVE_ID),
      closed: (error) => {
        this.closed = true;
        clearTimeout(this.pushRetry);
        this.resolveReady(false);
        // Let the database work already started finish before the client goes on.
        void Promise.all([this.inbox, this.pushTask]).then(() =>
          resolveEnded({
            error: this.fatal ?? error,
            fatal: this.fatal !== undefined,
            welcomed: this.welcomed,
            tokenExpired: this.tokenExpired,
          }),
        );
      },
    });
  }

  /** Closes the connection on purpose. */
  close(): void {
    this.connection.drop();
  }

  /** Sends a `ping` with this id, when welcomed; false when it could not be sent. */
  sendPing(id: string): boolean {
    if (!this.welcomed) return false;
    // The keep-alive tells the server how many local transactions wait (its status page shows it).
    const pending = id === KEEP_ALIVE_ID ? this.host.pendingTransactions() : undefined;
    return this.connection.send(
      JSON.stringify({
        type: 'ping',
        v: PROTOCOL_VERSION,
        id,
        ...(pending === undefined ? {} : { pending }),
      }),
    );
  }

  get online(): boolean {
    return this.welcomed && !this.closed;
  }

  private hello(): void {
    const { replica, options } = this.host;
    // With a cursor, the shapes it stands for (the others are added once live); without one, a
    // snapshot of every shape wanted.
    const held = replica.heldFor(options.shapes, options.shapesKey);
    const cursor = held ? replica.cursor : undefined;
    this.helloShapes = held ?? this.host.shapes.active();
    this.serverShapes = this.helloShapes;
    this.resumed = held !== undefined;
    this.connection.send(
      JSON.stringify({
        type: 'hello',
        v: PROTOCOL_VERSION,
        clientId: replica.clientId,
        schemaVersion: replica.db.schema.version,
        ...(this.token ? { token: this.token } : {}),
        shapes: this.helloShapes,
        ...(cursor === undefined ? {} : { cursor }),
        // The server serves another schema version when these fit its own (mapping the rows).
        columns: this.host.columns,
        // Snapshot chunks by column: a third smaller, parsed in a third of the time.
        formats: [SNAPSHOT_COLUMNS_FORMAT],
      }),
    );
  }

  private receive(data: string | Uint8Array): void {
    let message: ServerFrame;
    try {
      message = parseServerFrame(data);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (this.queued === 0 && message.type === 'changes' && this.welcomed && !this.closed) {
      // Nothing before it in the inbox: apply it now. With a synchronous driver that is the whole
      // apply, the live queries told and the cursor moved, before this callback returns.
      let applying: Promise<void> | undefined;
      try {
        applying = this.applyChanges(message);
      } catch (error) {
        this.fail(error as Error);
        return;
      }
      if (applying) {
        // Handled by the queued task, which does not await it once the session closed.
        applying.catch(() => {});
        this.enqueue(() => applying);
      }
      return;
    }
    this.enqueue(() => this.handle(message));
  }

  /** Handles messages in arrival order: `work` runs once everything before it is done. */
  private enqueue(work: () => Promise<void>): void {
    this.queued++;
    this.inbox = this.inbox.then(async () => {
      try {
        if (this.closed) return;
        await work();
      } catch (error) {
        this.fail(error as Error);
      } finally {
        this.queued--;
      }
    });
  }

  /** Drops the connection for `error` (reported, except a cursor gap, which a reconnect fixes). */
  private fail(error: Error): void {
    if (this.closed) return;
    if (!is(error, CursorGapError)) this.host.error(error);
    this.connection.drop(error);
  }

  private async handle(message: ServerFrame): Promise<void> {
    if (message.type === 'error') return this.serverError(message);
    if (message.type === 'pong') {
      if (message.id !== KEEP_ALIVE_ID) this.host.pong(message.id, message.position);
      return;
    }
    if (message.type === 'welcome') {
      if (this.welcomed) throw new SyncProtocolError('the server sent welcome twice on one connection');
      const clockError = await this.host.replica.welcome(message);
      if (clockError) this.host.error(clockError);
      this.limits = message.limits;
      this.welcomeStamp = message.hlc;
      this.welcomed = true;
      this.resolveReady(true);
      this.requestPush();
      if (this.host.replica.unresolved.size > 0) this.fetchUnresolved();
      // Resuming from a cursor: the hello's shapes are on the device already.
      if (this.resumed) this.host.shapes.holding(this.helloShapes);
      this.syncShapes();
      return;
    }
    if (!this.welcomed) throw new SyncProtocolError(`the server sent ${message.type} before welcome`);
    if (message.type === 'snapshot') return this.applySnapshot(message);
    if (message.type === 'changes') return this.applyChanges(message);
    if (message.type === 'rows') return this.applyRows(message);
    if (message.type === 'unsubscribed') return this.shapeRemoved(message);
    return this.applyAck(message);
  }

  private serverError(message: Extract<ServerMessage, { type: 'error' }>): void {
    const error = serverError(message);
    const asked = message.shapeId === undefined ? undefined : this.requested.get(message.shapeId);
    if (asked && message.shapeId !== undefined && !message.fatal) {
      // A shape change the server refused: a subscription fails (its callers hear why); an
      // unsubscribe of a shape the server does not send leaves nothing to wait for.
      this.requested.delete(message.shapeId);
      if (asked === 'subscribe') this.host.shapes.refused(message.shapeId, error);
      else this.serverShapes = this.serverShapes.filter((shape) => shape.id !== message.shapeId);
      this.host.error(error);
      this.syncShapes();
      return;
    }
    if (stopsClient(message)) {
      this.fatal = error;
      this.connection.drop(error);
      return;
    }
    if (message.code === TOKEN_EXPIRED) {
      // The server closes next; unacknowledged pushes go again on the next connection.
      this.tokenExpired = true;
      return;
    }
    this.host.error(error);
    if (message.fatal) return;
    if (message.code === PUSH_FAILED) {
      // The server failed on the push (not a refusal of it): push again after a backoff, while
      // downloads go on.
      this.retryPushLater();
      return;
    }
    // A push the server refused whole gets no ack: let the next trigger send it again.
    this.pushInFlight = false;
  }

  /** Holds pushes back for a backoff (growing while the server keeps failing), then pushes. */
  private retryPushLater(): void {
    this.pushInFlight = true;
    clearTimeout(this.pushRetry);
    this.pushRetry = setTimeout(() => {
      this.pushRetry = undefined;
      this.pushInFlight = false;
      this.requestPush();
    }, this.pushBackoff.next());
  }

  private async applySnapshot(chunk: SnapshotChunk): Promise<void> {
    const { replica, options } = this.host;
    if (chunk.refresh || this.requested.get(chunk.shapeId) === 'subscribe')
      return this.applyAddedShape(chunk);
    this.snapshot ??= replica.snapshot(
      this.helloShapes,
      options.shapesKey,
      this.welcomeStamp,
      options.snapshotBatchRows,
    );
    const applied = await this.snapshot.apply(chunk);
    this.host.remoteTables(applied.tables);
    this.host.progress(applied.progress);
    for (const failure of applied.failed) this.host.error(failure);
    if (applied.failed.length > 0) this.fetch(applied.failed);
    if (applied.cursor !== undefined) {
      replica.finishSnapshot(applied.cursor, options.shapesKey, this.snapshot.held);
      this.snapshot = undefined;
      this.host.shapes.holding(this.helloShapes);
      this.host.cursorMoved();
    }
  }

  /**
   * A chunk of a shape added to this connection: the server sent every change up to its position
   * before it, so it must be at this client's cursor. Its last chunk makes the shape held.
   */
  private async applyAddedShape(chunk: SnapshotChunk): Promise<void> {
    const { replica, options } = this.host;
    let applier = this.adding.get(chunk.shapeId);
    if (!applier) {
      if (chunk.position !== replica.cursor) {
        throw new SyncProtocolError(
          `the snapshot of shape "${chunk.shapeId}" is at position ${chunk.position}, but this client's cursor is ${replica.cursor ?? '(none)'}`,
        );
      }
      // A refresh sends a shape this connection has again: the others are what stays besides it.
      const shape = chunk.refresh
        ? this.serverShapes.find((s) => s.id === chunk.shapeId)
        : this.host.shapes.active().find((s) => s.id === chunk.shapeId);
      if (!shape) {
        throw new SyncProtocolError(
          `the server sent a snapshot of shape "${chunk.shapeId}", which this client did not ask for`,
        );
      }
      const others = chunk.refresh
        ? () => this.serverShapes.filter((s) => s.id !== chunk.shapeId)
        : () => this.serverShapes;
      applier = replica.addedShape(shape, others, options.snapshotBatchRows);
      this.adding.set(chunk.shapeId, applier);
    }
    const applied = await applier.apply(chunk);
    this.host.remoteTables(applied.tables);
    this.host.shapes.progress(chunk.shapeId, applied.progress);
    for (const failure of applied.failed) this.host.error(failure);
    if (applied.failed.length > 0) this.fetch(applied.failed);
    if (!applied.done) return;
    this.adding.delete(chunk.shapeId);
    if (!chunk.refresh) this.requested.delete(chunk.shapeId);
    this.serverShapes = applier.held;
    replica.finishSnapshot(undefined, options.shapesKey, applier.held);
    this.host.shapes.holding(applier.held);
    this.syncShapes();
  }

  /** The server stopped sending a shape: the rows no other shape holds leave the device. */
  private async shapeRemoved(message: UnsubscribedMessage): Promise<void> {
    const shape = this.serverShapes.find((s) => s.id === message.shapeId);
    this.requested.delete(message.shapeId);
    if (shape) {
      const remaining = this.serverShapes.filter((s) => s !== shape);
      const tables = await this.host.replica.dropShape(shape, remaining);
      this.serverShapes = remaining;
      if (tables.size > 0) this.host.remoteTables(tables);
    }
    this.syncShapes();
  }

  /**
   * Tells the server what changed in the shapes wanted: `unsubscribe` for shapes it sends that are
   * no longer wanted, `subscribe` for wanted ones it does not send, a few at a time.
   */
  syncShapes(): void {
    if (!this.welcomed || this.closed) return;
    const wanted = this.host.shapes.active();
    const send = (type: string, fields: Record<string, unknown>) =>
      this.connection.send(JSON.stringify({ type, v: PROTOCOL_VERSION, ...fields }));
    for (const shape of this.serverShapes) {
      if (this.requested.size >= MAX_SHAPE_REQUESTS) return;
      if (this.requested.has(shape.id) || findShape(wanted, shape)) continue;
      this.requested.set(shape.id, 'unsubscribe');
      send('unsubscribe', { shapeId: shape.id });
    }
    for (const shape of wanted) {
      if (this.requested.size >= MAX_SHAPE_REQUESTS) return;
      if (this.requested.has(shape.id) || this.serverShapes.some((s) => s.id === shape.id)) continue;
      this.requested.set(shape.id, 'subscribe');
      send('subscribe', { shape });
    }
  }

  /** Applies a `changes` message; returns a promise only when the apply could not finish now. */
  private applyChanges(message: ChangesMessage): Promise<void> | undefined {
    const { replica } = this.host;
    const applied = replica.applyChanges(message, this.helloShapes.length === 0);
    if (applied instanceof Promise) {
      return applied.then(
        (done) => this.changesApplied(done),
        (error) => this.applyCarefully(message, error),
      );
    }
    this.changesApplied(applied);
    return undefined;
  }

  /**
   * A `changes` message the database refused as a whole is applied again change by change: the
   * changes it refuses are skipped and reported, their rows fetched from the server, and the
   * cursor moves on, so one bad change never stops the sync (docs/sync-internals.md).
   */
  private async applyCarefully(message: ChangesMessage, error: unknown): Promise<void> {
    if (is(error, CursorGapError) || this.closed) throw error;
    const { replica } = this.host;
    this.changesApplied(await replica.applyChanges(message, this.helloShapes.length === 0, true));
  }

  private changesApplied(applied: ChangesApplied): void {
    if (applied.skipped) return;
    if (applied.tables.size > 0) this.host.remoteTables(applied.tables);
    if (applied.clockErrors.length > 0) this.host.error(applied.clockErrors[0]);
    for (const failure of applied.failed) this.host.error(failure);
    if (applied.refetch.length > 0) this.fetch(applied.refetch);
    this.host.cursorMoved();
  }

  /** Asks the server for its version of rows (noted as unresolved until one is written). */
  private fetch(rows: readonly RowKey[]): void {
    const { replica } = this.host;
    replica.unresolve(rows);
    this.fetchUnresolved();
  }

  /** Asks the server again for every row the client could not write yet. */
  private fetchUnresolved(): void {
    const rows = [...this.host.replica.unresolved.values()];
    for (let i = 0; i < rows.length && this.online; i += MAX_FETCH_ROWS) {
      const part = rows.slice(i, i + MAX_FETCH_ROWS);
      this.connection.send(JSON.stringify({ type: 'fetch', v: PROTOCOL_VERSION, rows: part }));
    }
  }

  private async applyRows(message: RowsMessage): Promise<void> {
    const written = await this.host.replica.applyFetched(message);
    if (written.tables.size > 0) this.host.remoteTables(written.tables);
    for (const failure of [...written.failed, ...written.incomplete]) this.host.error(failure);
  }

  private async applyAck(ack: AckMessage): Promise<void> {
    const { replica } = this.host;
    const applied = await replica.applyAck(ack);
    if (applied.tables.size > 0) this.host.remoteTables(applied.tables);
    for (const event of applied.rejected) this.host.rejected(event);
    for (const failure of [...applied.failed, ...applied.incomplete]) this.host.error(failure);
    this.host.outboxSettled(applied.firstSeq);
    this.pushBackoff.reset();
    this.pushInFlight = false;
    // The outbox changed: a row the database refused before (a unique value a local row held,
    // say) may fit now.
    if (applied.failed.length > 0) replica.unresolve(applied.failed);
    if (replica.unresolved.size > 0) this.fetchUnresolved();
    this.requestPush();
  }

  /**
   * Pushes the next batches of the outbox, unless a push is in flight (its ack asks again) or
   * being read (it is read again after). Rows not stamped yet are stamped first.
   */
  requestPush(): void {
    if (!this.online || this.pushInFlight) return;
    if (this.pushRunning) {
      this.pushWanted = true;
      return;
    }
    this.pushRunning = true;
    this.pushWanted = false;
    this.pushTask = this.push().finally(() => {
      this.pushRunning = false;
      if (this.pushWanted) this.requestPush();
    });
  }

  private async push(): Promise<void> {
    const { replica } = this.host;
    try {
      await replica.stamp();
      const plan = await replica.readPush(this.limits!);
      for (const refused of plan?.refused ?? []) this.refusedLocally(refused);
      if (!plan || this.closed) return;
      this.pushInFlight = this.connection.send(plan.json);
    } catch (error) {
      if (is(error, WriteTooLargeError)) {
        // Only oversized writes were left: settled here, and the outbox goes on behind them.
        this.refusedLocally(error);
        this.pushWanted = true;
        return;
      }
      this.host.error(error as Error);
    }
  }

  /**
   * A local write no push can carry left the outbox (readPush): told as a rejection is, and its
   * rows fetched back from the server, which undoes the local write as a rejection's rows would.
   */
  private refusedLocally(refused: WriteTooLargeError): void {
    this.host.rejected({ mutationId: refused.mutationId, reason: refused.message, rows: [] });
    this.fetch(refused.rows);
    void this.host.replica.outboxFirstSeq().then(
      (seq) => this.host.outboxSettled(seq),
      (error: Error) => this.host.error(error),
    );
  }
}
