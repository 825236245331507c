import { is } from '../../entity.js';
import { SyncProtocolError } from '../../errors.js';
import {
  type AckMessage,
  type ChangesMessage,
  type MessageLimits,
  PROTOCOL_VERSION,
  parseServerMessage,
  type ServerMessage,
  type SnapshotMessage,
} from '../protocol/messages.js';
import type { RejectedEvent } from './ack-apply.js';
import { Connection } from './connection.js';
import type { LocalReplica } from './local-replica.js';
import { type ChangesApplied, CursorGapError } from './remote-apply.js';
import { serverError, stopsClient } from './server-error.js';
import type { SnapshotApplier, SnapshotProgress } from './snapshot-apply.js';
import type { ResolvedSyncOptions } from './sync-options.js';
import type { WebSocketConstructor } from './websocket.js';

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
 * server refused the client for good (do not retry), `welcomed` whether it got that far.
 *
 * @example
 *   const { error, fatal } = await session.ended;
 *   if (!fatal) await sleep(backoff.next());
 */
export interface SessionEnd {
  readonly error: Error | undefined;
  readonly fatal: boolean;
  readonly welcomed: boolean;
}

const KEEP_ALIVE_ID = 'keep-alive';

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
  private inbox: Promise<void> = Promise.resolve();
  /** Messages in `inbox` not handled yet: at 0 a `changes` message may be applied at once. */
  private queued = 0;
  private pushTask: Promise<void> = Promise.resolve();
  private pushRunning = false;
  private pushInFlight = false;
  private pushWanted = false;
  private closed = false;
  private fatal: Error | undefined;
  private resolveReady!: (welcomed: boolean) => void;

  constructor(
    private readonly host: SessionHost,
    WebSocketClass: WebSocketConstructor,
    private readonly token: string | undefined,
  ) {
    this.ready = new Promise((resolve) => {
      this.resolveReady = resolve;
    });
    let resolveEnded!: (end: SessionEnd) => void;
    this.ended = new Promise((resolve) => {
      resolveEnded = resolve;
    });
    this.connection = new Connection(WebSocketClass, host.options.url, host.options.pingIntervalMs, {
      open: () => this.hello(),
      message: (data) => this.receive(data),
      keepAlive: () => this.sendPing(KEEP_ALIVE_ID),
      closed: (error) => {
        this.closed = true;
        this.resolveReady(false);
        // Let the database work already started finish before the client goes on.
        void Promise.all([this.inbox, this.pushTask]).then(() =>
          resolveEnded({
            error: this.fatal ?? error,
            fatal: this.fatal !== undefined,
            welcomed: this.welcomed,
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
    return this.connection.send(JSON.stringify({ type: 'ping', v: PROTOCOL_VERSION, id }));
  }

  get online(): boolean {
    return this.welcomed && !this.closed;
  }

  private hello(): void {
    const { replica, options } = this.host;
    const cursor = replica.cursorFor(options.shapesKey);
    this.connection.send(
      JSON.stringify({
        type: 'hello',
        v: PROTOCOL_VERSION,
        clientId: replica.clientId,
        schemaVersion: replica.db.schema.version,
        ...(this.token ? { token: this.token } : {}),
        shapes: options.shapes,
        ...(cursor === undefined ? {} : { cursor }),
      }),
    );
  }

  private receive(data: string | Uint8Array): void {
    let message: ServerMessage;
    try {
      message = parseServerMessage(data);
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

  private async handle(message: ServerMessage): Promise<void> {
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
      return;
    }
    if (!this.welcomed) throw new SyncProtocolError(`the server sent ${message.type} before welcome`);
    if (message.type === 'snapshot') return this.applySnapshot(message);
    if (message.type === 'changes') return this.applyChanges(message);
    return this.applyAck(message);
  }

  private serverError(message: Extract<ServerMessage, { type: 'error' }>): void {
    const error = serverError(message);
    if (stopsClient(message)) {
      this.fatal = error;
      this.connection.drop(error);
      return;
    }
    this.host.error(error);
    // A push the server refused whole gets no ack: let the next trigger send it again.
    if (!message.fatal) this.pushInFlight = false;
  }

  private async applySnapshot(chunk: SnapshotMessage): Promise<void> {
    const { replica, options } = this.host;
    this.snapshot ??= replica.snapshot(
      options.shapes,
      options.shapesKey,
      this.welcomeStamp,
      options.snapshotBatchRows,
    );
    const applied = await this.snapshot.apply(chunk);
    this.host.remoteTables(applied.tables);
    this.host.progress(applied.progress);
    if (applied.cursor !== undefined) {
      replica.finishSnapshot(applied.cursor, options.shapesKey);
      this.snapshot = undefined;
      this.host.cursorMoved();
    }
  }

  /** Applies a `changes` message; returns a promise only when the apply could not finish now. */
  private applyChanges(message: ChangesMessage): Promise<void> | undefined {
    const { replica, options } = this.host;
    const applied = replica.applyChanges(message, options.shapes.length === 0);
    if (applied instanceof Promise) return applied.then((done) => this.changesApplied(done));
    this.changesApplied(applied);
    return undefined;
  }

  private changesApplied(applied: ChangesApplied): void {
    if (applied.skipped) return;
    if (applied.tables.size > 0) this.host.remoteTables(applied.tables);
    if (applied.clockErrors.length > 0) this.host.error(applied.clockErrors[0]);
    this.host.cursorMoved();
  }

  private async applyAck(ack: AckMessage): Promise<void> {
    const applied = await this.host.replica.applyAck(ack);
    if (applied.tables.size > 0) this.host.remoteTables(applied.tables);
    for (const event of applied.rejected) this.host.rejected(event);
    this.host.outboxSettled(applied.firstSeq);
    this.pushInFlight = false;
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
      if (!plan || this.closed) return;
      this.pushInFlight = this.connection.send(plan.json);
    } catch (error) {
      this.host.error(error as Error);
    }
  }
}
