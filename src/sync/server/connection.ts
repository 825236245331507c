import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import type { Database } from '../../database/database.js';
import type { Transaction } from '../../database/transaction.js';
import { is } from '../../entity.js';
import { AuthError } from '../../errors.js';
import { compileRowPredicate } from '../../live/row-predicate.js';
import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import type { Node } from '../../sql/nodes.js';
import type { AnyMutators } from '../mutators/define-mutators.js';
import { encodeHlc, type HybridLogicalClock } from '../protocol/hlc.js';
import {
  type ChangeJson,
  type ClientMessage,
  type FetchMessage,
  type MessageLimits,
  type PingMessage,
  PROTOCOL_VERSION,
  type PushMessage,
  parseClientMessage,
  type ServerFrame,
  type ServerMessage,
  SNAPSHOT_COLUMNS_FORMAT,
  type SnapshotColumnsMessage,
  type SubscribeMessage,
  SyncMessageError,
  type UnsubscribeMessage,
} from '../protocol/messages.js';
import { PUSH_FAILED } from '../protocol/push-failed.js';
import type { RowRef } from './apply-changes.js';
import { applyPush, lastMutationId as lastMutationIdOf } from './apply-push.js';
import { readRestored } from './apply-rows.js';
import { type Authenticator, tokenExpiry } from './auth.js';
import { type ChangeHub, type HubSubscriber, LogPrunedError } from './change-hub.js';
import { type CapturedChange, ChangeLogReader, type TickedBatch } from './change-log-reader.js';
import { changesMessage } from './changes-bytes.js';
import type { ClientSchemaOptions, ClientSchemaView } from './client-schema.js';
import { SYNC_CLOSE_CODES } from './close-codes.js';
import type { ConnectionAdmission } from './connection-admission.js';
import { fetchRefs } from './fetch-rows.js';
import { type Handshake, HandshakeRefused, shakeHands, shapeForUser, startingPosition } from './handshake.js';
import { decodeLogRow } from './log-values.js';
import { subqueryFilters, tablesReferenced } from './referenced-columns.js';
import { RequestBudget } from './request-budget.js';
import type { RuleSet } from './rules.js';
import type { SnapshotSlots } from './semaphore.js';
import type { ServerLog } from './server-log.js';
import type { ServerMetrics } from './server-metrics.js';
import { ShapeFilter } from './shape-filter.js';
import { readSnapshot, SnapshotAborted, type SnapshotShape, type SnapshotSink } from './snapshot-reader.js';
import { type SenderLimits, SocketSender } from './socket-sender.js';
import type { ConnectionStatus, StatusBoard } from './status-board.js';
import { TokenExpiry } from './token-expiry.js';

/**
 * What every connection of one server shares: the database and schema, the rules, the server's
 * clock, the change hub, how to authenticate, the log, the limits (the connection counts in
 * `admission`, the snapshot slots), and the server's shutdown state (`closing()`, and `trackPush`
 * so shutdown can wait for pushes in flight).
 *
 * @example
 *   new SyncConnection(socket, request, context);
 */
export interface ConnectionContext {
  readonly schema: Schema;
  /** The server's Prometheus metrics, when `monitoring.metrics` is on. */
  readonly metrics: ServerMetrics | undefined;
  /** The status page's activity and rejections, when `monitoring.statusPage` is on. */
  readonly status: StatusBoard | undefined;
  /** Which other client schema versions are served, and how (`createSyncServer({ clientSchemas })`). */
  readonly clientSchemas: ClientSchemaOptions;
  /** The mutators pushes may name (`createSyncServer({ mutators })`). */
  readonly mutators: AnyMutators | undefined;
  readonly db: Database;
  readonly rules: RuleSet;
  readonly clock: HybridLogicalClock;
  readonly hub: ChangeHub;
  readonly reader: ChangeLogReader;
  readonly authenticate: Authenticator;
  /** Takes a token from the URL's `?token=` too (`auth.allowTokenInUrl`). */
  readonly allowTokenInUrl: boolean;
  readonly log: ServerLog;
  readonly messageLimits: MessageLimits;
  /** From connect until signed in (hello received and its token checked). */
  readonly helloTimeoutMs: number;
  readonly snapshotChunkRows: number;
  readonly snapshotChunkBytes: number;
  /** Snapshots run at most `limits.maxConcurrentSnapshots` at once, half of them per user; the others wait. */
  readonly snapshots: SnapshotSlots;
  readonly admission: ConnectionAdmission;
  readonly sender: SenderLimits;
  readonly maxProtocolErrors: number;
  /** A live connection with more changes than this waiting to be sent is dropped (it reconnects). */
  readonly maxBacklogChanges: number;
  closing(): boolean;
  trackPush(work: Promise<unknown>): void;
}

/**
 * A shape whose condition reads another table: the columns it reads of it, and, when it reads it
 * only through subqueries of that table alone whose filters TypeScript can test, `matters`: false
 * for a row of it that no such filter can admit (another user's membership).
 */
interface Dependent {
  readonly shape: SnapshotShape;
  readonly columns: ReadonlySet<string> | 'all';
  readonly matters: ((row: Readonly<Record<string, unknown>>) => boolean) | undefined;
}

/** By table, the shapes whose condition reads it (another table than their own). */
function dependentsOf(
  shapes: readonly SnapshotShape[],
  tables: readonly AnyTable[],
): Map<string, Dependent[]> {
  const out = new Map<string, Dependent[]>();
  for (const shape of shapes) {
    if (!shape.where) continue;
    const filters = subqueryFilters(shape.where.node, shape.table);
    for (const [name, columns] of tablesReferenced(shape.where.node, shape.table, tables)) {
      const list = out.get(name) ?? [];
      list.push({
        shape,
        columns,
        matters: mattersFor(
          filters.get(name),
          tables.find((t) => t.$name === name),
        ),
      });
      out.set(name, list);
    }
  }
  return out;
}

/** The test of `Dependent.matters`, when every subquery filter of the table compiles to TypeScript. */
function mattersFor(
  filters: readonly (Node | undefined)[] | 'any' | undefined,
  table: AnyTable | undefined,
): Dependent['matters'] {
  if (!table || filters === undefined || filters === 'any' || filters.some((f) => f === undefined))
    return undefined;
  const tests = filters.map((f) => compileRowPredicate(f!, table));
  if (tests.some((t) => t === undefined)) return undefined;
  // Unknown (a NULL, a column the image lacks) counts as a match.
  return (row) => tests.some((test) => test!(decodeLogRow(table, row as Record<string, unknown>)) !== false);
}

/** Connections this process has opened, for their ids. */
let connectionsOpened = 0;

/**
 * One client's WebSocket, from `hello` to close (docs/sync-internals.md, "Server flow" step 3).
 * The handshake (auth, schema version, shapes, `welcome`, snapshot or catch-up) runs first; the
 * connection then receives the hub's batches, filters them by its shapes and sends `changes`.
 * Pushes and pings wait until it is live and are handled one at a time; a push's `ack` and a
 * ping's `pong` go out only after the hub has read (and this connection has sent) every change
 * committed before them. Everything sent after the handshake goes through one ordered queue.
 * What a client may cost is bounded: see `RequestBudget` (requests and protocol errors),
 * `SocketSender` (bytes left unread, time without reading), `ConnectionAdmission` (connection
 * counts), and the token's `exp`, at which the connection closes with `tokenExpired`.
 *
 * @example
 *   wss.on('connection', (socket, request) => new SyncConnection(socket, request, context));
 */
export class SyncConnection implements HubSubscriber {
  state: 'hello' | 'syncing' | 'live' | 'closed' = 'hello';
  /** Resolves when the socket has closed and the connection let go of everything. */
  readonly done: Promise<void>;
  private session: Handshake | undefined;
  /** The connection's shapes and their filter: the hello's, then as `subscribe` and `unsubscribe` change them. */
  private shapes: readonly SnapshotShape[] = [];
  private shapeFilter: ShapeFilter | undefined;
  /** By table: the shapes whose condition reads it, and the columns it reads (see `refreshAfter`). */
  private dependents = new Map<string, Dependent[]>();
  /** Ids of shapes with a refresh queued and not started. */
  private readonly refreshing = new Set<string>();
  /** Ids of shapes being added (their snapshot queued or running). */
  private readonly adding = new Set<string>();
  /** How rows map to the client's schema, when it was built with another version. */
  private view: ClientSchemaView | undefined;
  /** The client reads snapshot chunks by column (it listed the format, and its rows need no mapping). */
  private columnChunks = false;
  /** The table of each shape id, also while it is being added (its snapshot names only the id). */
  private readonly shapeTables = new Map<string, string>();
  /** The last tick sent to the client (its cursor, once it applied what it got). */
  private sent = 0n;
  private outgoing: Promise<void> = Promise.resolve();
  /** Tasks in `outgoing` not finished yet: at 0 a batch may be sent without queueing. */
  private queued = 0;
  private readonly sender: SocketSender;
  private readonly budget: RequestBudget;
  /** A fatal error was sent: nothing more is read from the client. */
  private ending = false;
  /** Set once signed in: the connection then counts for this user. */
  private userId: string | undefined;
  private readonly expiry = new TokenExpiry(() => this.expired());
  /** Changes delivered by the hub and not yet sent. */
  private backlog = 0;
  private dropped = false;
  private inbox: Promise<void>;
  private starting: Promise<void> = Promise.resolve();
  private goLive!: () => void;
  private readonly helloTimer: ReturnType<typeof setTimeout>;
  private readonly remoteAddress: string | undefined;
  /** Names the connection in every log line, with its client id once signed in. */
  private readonly id = `c${++connectionsOpened}`;
  private readonly openedAt = new Date().toISOString();
  /** The local transactions the client last said it has waiting (its keep-alive ping). */
  private reportedPending: number | undefined;

  /** This connection as the status page shows it (no row data). */
  status(): ConnectionStatus {
    return {
      connectionId: this.id,
      state: this.state,
      userId: this.session?.user.userId,
      clientId: this.session?.clientId,
      shapes: this.state === 'live' ? this.shapes.map((s) => ({ id: s.id, table: s.table.$name })) : [],
      lag: this.state === 'live' ? Math.max(0, Number(this.ctx.hub.position - this.sent)) : 0,
      pending: this.reportedPending,
      since: this.openedAt,
    };
  }

  constructor(
    private readonly socket: WebSocket,
    private readonly request: IncomingMessage,
    private readonly ctx: ConnectionContext,
  ) {
    this.remoteAddress = request.socket.remoteAddress;
    this.inbox = new Promise<void>((resolve) => {
      this.goLive = resolve;
    });
    this.done = new Promise<void>((resolve) => {
      socket.on('close', (code, reason) => {
        this.closed(code, reason.toString());
        resolve();
      });
    });
    socket.on('error', (error) => ctx.log.debug('connection.error', error.message, this.fields()));
    socket.on('message', (data) => this.receive(data as Buffer));
    this.sender = new SocketSender(socket, ctx.sender, (reason) => {
      ctx.log.info('connection.too_slow', `client dropped: ${reason}`, this.fields());
      void this.close(SYNC_CLOSE_CODES.tryAgainLater, reason);
    });
    this.budget = new RequestBudget(ctx.maxProtocolErrors, socket);
    this.helloTimer = setTimeout(() => {
      // Counted until signed in: an `authenticate` that hangs holds no place for long either.
      const what = this.state === 'hello' ? 'no hello' : 'not signed in';
      this.fatal(
        'hello_timeout',
        `${what} within ${ctx.helloTimeoutMs} ms: send hello right after connecting`,
        SYNC_CLOSE_CODES.protocolError,
      );
    }, ctx.helloTimeoutMs);
    ctx.admission.upgraded(this);
    ctx.log.debug('connection.open', 'socket opened', this.fields());
  }

  /** Admission may close a socket that has not said hello yet, to make room for new ones. */
  evictable(): boolean {
    return this.state === 'hello';
  }

  evict(): void {
    this.fatal(
      'hello_timeout',
      'closed to make room: too many connections are waiting to sign in; send hello right after connecting',
      SYNC_CLOSE_CODES.protocolError,
    );
  }

  private fields(): Record<string, unknown> {
    return {
      connectionId: this.id,
      clientId: this.session?.clientId,
      userId: this.session?.user.userId,
      remoteAddress: this.remoteAddress,
    };
  }

  private receive(data: Buffer): void {
    // Once a fatal error is sent the connection is over: what the client sent after it is not read
    // (a flood would otherwise be parsed, refused and logged message by message until the close).
    if (this.state === 'closed' || this.ending) return;
    let message: ClientMessage;
    try {
      message = parseClientMessage(data, this.ctx.messageLimits);
    } catch (error) {
      if (!is(error, SyncMessageError)) {
        this.fail('connection.receive_failed', error);
        return;
      }
      if (this.state === 'hello') this.fatal(error.code, error.message, SYNC_CLOSE_CODES.protocolError);
      else this.refuse(error.code, error.message);
      return;
    }
    if (this.state === 'hello') {
      if (message.type !== 'hello') {
        this.fatal(
          'invalid_message',
          `the first message must be hello, got ${message.type}`,
          SYNC_CLOSE_CODES.protocolError,
        );
        return;
      }
      this.state = 'syncing';
      this.starting = this.start(message);
      return;
    }
    if (message.type === 'hello') {
      this.refuse(
        'invalid_message',
        'hello was already received on this connection; to change shapes, send subscribe or unsubscribe',
      );
      return;
    }
    const next = message;
    if (!this.budget.take(next.type)) {
      this.refuse(
        'too_many_requests',
        `too many ${next.type} messages unanswered on this connection; wait for the answers before sending more`,
      );
      return;
    }
    // A ping waits for what was asked before it, but is not queued itself: pings share the hub's
    // reads, so a flood of them costs no statement each, and pushes behind it do not wait for it.
    const settled = () => this.budget.done(next.type);
    if (next.type === 'ping') {
      void this.ping(next, this.inbox)
        .catch((error) => this.fail('connection.message_failed', error))
        .finally(settled);
      return;
    }
    if (next.type === 'subscribe' || next.type === 'unsubscribe') {
      // Checked in order with pushes, but not waited for: a big shape's snapshot holds up the
      // changes sent after it, not the client's pushes.
      this.inbox = this.inbox.then(() => {
        void this.changeShapes(next)
          .catch((error) => this.fail('connection.message_failed', error))
          .finally(settled);
      });
      return;
    }
    this.inbox = this.inbox
      .then(() => (next.type === 'push' ? this.push(next) : this.fetch(next)))
      .catch((error) => this.fail('connection.message_failed', error))
      .finally(settled);
  }

  /**
   * Answers a message the server will not take with a non-fatal error; past
   * `limits.maxProtocolErrors` of them the client is broken or hostile, and is closed.
   */
  private refuse(code: string, message: string, shapeId?: string): void {
    if (!this.budget.protocolError()) {
      this.sendError(code, message, shapeId);
      return;
    }
    this.ctx.log.info('connection.too_many_errors', `client closed after ${code}: ${message}`, this.fields());
    // A hostile client: stop reading its socket at once (TCP holds it back); the close ends it.
    this.socket.pause();
    this.fatal(
      'too_many_errors',
      `more than ${this.ctx.maxProtocolErrors} messages refused on this connection (the last: ${code}); fix the client`,
      SYNC_CLOSE_CODES.policyViolation,
    );
  }

  private async start(hello: Extract<ClientMessage, { type: 'hello' }>): Promise<void> {
    const { ctx } = this;
    try {
      const session = await shakeHands(ctx, hello, this.request);
      if (this.state === 'closed') return;
      const refusal = ctx.admission.signIn(this, session.user.userId);
      if (refusal) {
        ctx.log.info('connection.too_many', refusal, { ...this.fields(), userId: session.user.userId });
        this.fatal('too_many_connections', refusal, SYNC_CLOSE_CODES.tooManyConnections);
        return;
      }
      clearTimeout(this.helloTimer);
      this.userId = session.user.userId;
      this.session = session;
      this.view = session.view;
      // Chunks by column for a client that reads them, unless its rows are mapped to another schema.
      this.columnChunks = !session.view && (hello.formats?.includes(SNAPSHOT_COLUMNS_FORMAT) ?? false);
      for (const shape of session.shapes) this.shapeTables.set(shape.id, shape.table.$name);
      this.shapes = session.shapes;
      this.shapeFilter = session.filter;
      this.dependents = dependentsOf(session.shapes, ctx.schema.tableList);
      this.expiry.watch(tokenExpiry(session.user));
      // Before welcome, which would tell another user's client its mutation ids.
      const lastMutationId = await lastMutationIdOf(ctx.db, session.clientId, session.user.userId).catch(
        (error: unknown) => {
          if (is(error, AuthError)) {
            throw new HandshakeRefused('forbidden', error.message, SYNC_CLOSE_CODES.forbidden);
          }
          throw error;
        },
      );
      this.send({
        type: 'welcome',
        v: PROTOCOL_VERSION,
        lastMutationId,
        limits: ctx.messageLimits,
        hlc: encodeHlc(ctx.clock.now()),
      });
      const cursor = await startingPosition(
        ctx,
        session,
        hello.cursor,
        this.snapshotSink(true),
        this.fields(),
      );
      this.sent = cursor;
      await ctx.hub.attach(this, cursor);
      if (this.state !== 'syncing') {
        ctx.hub.detach(this);
        return;
      }
      this.state = 'live';
      this.goLive();
      ctx.metrics?.handshakes.inc({ outcome: 'welcomed' });
      ctx.log.info('connection.live', 'client connected', {
        ...this.fields(),
        shapes: hello.shapes.length,
        cursor: String(cursor),
      });
    } catch (error) {
      if (this.state === 'closed' || is(error, SnapshotAborted)) return;
      if (is(error, LogPrunedError)) {
        // A prune raced this catch-up: the reconnect gets a snapshot (docs/sync-internals.md).
        this.lost(error);
        return;
      }
      if (is(error, HandshakeRefused)) {
        ctx.metrics?.handshakes.inc({ outcome: error.code });
        const level = error.code === 'auth_failed' ? 'info' : 'debug';
        ctx.log[level](`connection.${error.code}`, error.message, this.fields());
        this.fatal(error.code, error.message, error.closeCode);
        return;
      }
      this.fail('connection.start_failed', error);
    }
  }

  private get filter(): ShapeFilter {
    return this.shapeFilter!;
  }

  /**
   * A `subscribe` or `unsubscribe` (docs/sync-internals.md, "Shapes at runtime"): checked now,
   * done in the send queue, in order with the changes. Resolves once answered.
   */
  private changeShapes(message: SubscribeMessage | UnsubscribeMessage): Promise<void> {
    if (this.state !== 'live') return Promise.resolve();
    if (message.type === 'unsubscribe') {
      const { shapeId } = message;
      if (!this.shapes.some((shape) => shape.id === shapeId)) {
        const why = this.adding.has(shapeId) ? 'is still being added' : 'is not one of its shapes';
        this.refuse('unknown_shape', `unsubscribe: shape "${shapeId}" of this connection ${why}`, shapeId);
        return Promise.resolve();
      }
      return this.queue(async () => {
        this.setShapes(this.shapes.filter((shape) => shape.id !== shapeId));
        this.ctx.log.debug('shape.removed', `shape ${shapeId} removed`, { ...this.fields(), shapeId });
        await this.send({ type: 'unsubscribed', v: PROTOCOL_VERSION, shapeId, position: String(this.sent) });
      });
    }
    const { id } = message.shape;
    if (this.shapes.some((shape) => shape.id === id) || this.adding.has(id)) {
      this.refuse(
        'invalid_message',
        `subscribe: shape id "${id}" is already in use on this connection; unsubscribe it first, or give the new shape another id`,
        id,
      );
      return Promise.resolve();
    }
    const max = this.ctx.messageLimits.maxShapes;
    if (this.shapes.length + this.adding.size >= max) {
      this.refuse(
        'too_large',
        `subscribe: this connection has ${max} shapes, the most it may have (maxShapes)`,
        id,
      );
      return Promise.resolve();
    }
    let shape: SnapshotShape;
    try {
      shape = shapeForUser(this.ctx, this.session!.user, message.shape, 'shape');
    } catch (error) {
      if (!is(error, HandshakeRefused)) throw error;
      this.refuse(error.code, error.message, id);
      return Promise.resolve();
    }
    if (this.view && !this.view.has(shape.table.$name)) {
      this.refuse(
        'unknown_table',
        `subscribe: "${shape.table.$name}" is not among the tables the client says it has`,
        id,
      );
      return Promise.resolve();
    }
    this.adding.add(id);
    this.shapeTables.set(id, shape.table.$name);
    return this.queue(() => this.addShape(shape)).finally(() => this.adding.delete(id));
  }

  private setShapes(shapes: readonly SnapshotShape[]): void {
    this.shapes = shapes;
    this.shapeFilter = new ShapeFilter(this.ctx.db, shapes);
    this.dependents = dependentsOf(shapes, this.ctx.schema.tableList);
  }

  /**
   * Rows move in and out of a shape whose condition reads another table (a read rule through a
   * membership table) when that table changes, without changing themselves: after a batch with
   * such a change (an insert or delete, or an update of a column the condition reads), the shape
   * is sent again, whole, at a position after the batch (`addShape` with `refresh`), and the
   * client replaces its rows with those. Refreshes of one shape queued meanwhile are one.
   */
  private refreshAfter(changes: readonly CapturedChange[]): void {
    if (this.dependents.size === 0) return;
    for (const change of changes) {
      const readers = this.dependents.get(change.table);
      if (!readers) continue;
      for (const { shape, columns, matters } of readers) {
        if (this.refreshing.has(shape.id)) continue;
        const touched =
          change.op !== 'update' ||
          columns === 'all' ||
          change.oldPk !== undefined ||
          Object.keys(change.oldValues ?? {}).some((name) => columns.has(name));
        if (!touched) continue;
        if (
          matters &&
          !matters(change.row) &&
          !(change.oldValues && matters({ ...change.row, ...change.oldValues }))
        )
          continue;
        this.refreshing.add(shape.id);
        this.enqueue(async () => {
          this.refreshing.delete(shape.id);
          // Still this connection's shape (not unsubscribed meanwhile).
          if (this.shapes.includes(shape)) await this.addShape(shape, true);
        });
      }
    }
  }

  /** `enqueue`, resolving once the task has run. */
  private queue(task: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve) => {
      this.enqueue(async () => {
        try {
          await task();
        } finally {
          resolve();
        }
      });
    });
  }

  /**
   * Adds a shape to a live connection, in the send queue (nothing else is sent meanwhile): a
   * snapshot of the shape alone at position P, preceded by the changes up to P in the other
   * shapes, read in the snapshot's transaction; then changes after P in every shape. So a row the
   * shape shares with another arrives in commit order, whichever way it comes.
   */
  private async addShape(shape: SnapshotShape, refresh = false): Promise<void> {
    const { ctx } = this;
    const release = await ctx.snapshots.acquire(this.session!.user.userId);
    try {
      if (this.state !== 'live') return;
      const sink = this.snapshotSink(false);
      const timer = ctx.metrics?.snapshots.startTimer();
      const { position, rows } = await readSnapshot(
        ctx.db,
        [shape],
        refresh ? { ...sink, refresh: true } : sink,
        {
          chunkRows: ctx.snapshotChunkRows,
          chunkBytes: ctx.snapshotChunkBytes,
          idleTimeoutMs: 2 * ctx.sender.drainTimeoutMs,
          beforeRows: (tx, at) => this.catchUp(tx, BigInt(at)),
        },
      );
      timer?.();
      if (!refresh) this.setShapes([...this.shapes, shape]);
      ctx.log.info(
        refresh ? 'shape.refreshed' : 'shape.added',
        `shape ${shape.id} ${refresh ? 'sent again' : 'added'}`,
        {
          ...this.fields(),
          shapeId: shape.id,
          rows,
          position,
        },
      );
    } catch (error) {
      if (this.state === 'closed' || is(error, SnapshotAborted)) return;
      if (is(error, LogPrunedError)) {
        this.lost(error);
        return;
      }
      throw error;
    } finally {
      release();
    }
  }

  /** Sends the changes after what was sent up to `to`, read through `tx` (a snapshot's). */
  private async catchUp(tx: Transaction, to: bigint): Promise<void> {
    if (to < this.sent) {
      throw new Error(`a snapshot at position ${to} is older than what this connection sent (${this.sent})`);
    }
    const reader = new ChangeLogReader(tx);
    while (this.sent < to) {
      const from = this.sent;
      const changes = (await reader.readFrom(from)).filter((c) => c.tick <= to);
      if (changes.length === 0 || changes[0]!.tick !== from + 1n) {
        throw new LogPrunedError(`the changes after position ${from} were pruned from the change log`);
      }
      const batch: TickedBatch = { from, to: changes[changes.length - 1]!.tick, changes };
      const full = this.sendChanges(batch, from, await this.filter.apply(changes, tx));
      if (full) await full;
    }
  }

  /** Where a snapshot's chunks go; `queued` when it runs outside the send queue (the handshake). */
  private snapshotSink(queued: boolean): SnapshotSink {
    return {
      send: (message) => void this.send(message),
      ...(this.columnChunks
        ? {
            sendColumns: (message: SnapshotColumnsMessage) => void this.send(message),
            sendText: (text: string) => void this.sendText(text),
          }
        : {}),
      drained: () => (queued ? this.drained() : this.sender.drained()),
      // Closing counts: a dropped client's snapshot must stop reading before the close completes.
      aborted: () => this.state === 'closed' || this.socket.readyState !== WebSocket.OPEN,
      skipped: ({ shapeId, table, pk, bytes }) =>
        this.ctx.log.warn('snapshot.row_too_large', `a row of ${bytes} bytes was left out of a snapshot`, {
          ...this.fields(),
          shapeId,
          table,
          pk,
          bytes,
        }),
    };
  }

  /**
   * Hub callback: queues the batch, to be filtered and sent in order after what came before. Each
   * send waits for the socket to drain, so a bulk write reaches a client at the pace it reads; a
   * client that falls more than `maxBacklogChanges` behind is dropped and catches up from the log
   * when it reconnects, so it does not hold the hub's batches in memory meanwhile.
   */
  deliver(batch: TickedBatch): void {
    if (this.dropped) return;
    const size = batch.changes.length;
    this.backlog += size;
    if (this.state === 'live' && this.backlog > this.ctx.maxBacklogChanges) {
      this.dropped = true;
      this.ctx.log.warn('connection.too_slow', 'client reads too slowly; dropping it', {
        ...this.fields(),
        backlog: this.backlog,
      });
      this.close(SYNC_CLOSE_CODES.tryAgainLater, 'too far behind; reconnect');
      return;
    }
    if (this.queued === 0 && this.state !== 'closed' && !this.filter.needsDatabase(batch.changes)) {
      // Nothing is queued before it and TypeScript decides the shapes alone: filter and send now,
      // within the hub's publish, so the first clients have their changes while the hub is still
      // handing the batch to the others. A full socket buffer holds the queue as below.
      let full: Promise<void> | undefined;
      try {
        const next = this.unsent(batch);
        if (next) full = this.sendChanges(batch, next.from, this.filter.applyNow(next.fresh));
      } catch (error) {
        this.fail('connection.send_failed', error);
      }
      if (!full) {
        this.backlog -= size;
        return;
      }
      // As below: a batch still in the socket buffer counts as backlog until it drained.
      this.enqueue(async () => {
        try {
          await full;
        } finally {
          this.backlog -= size;
        }
      });
      return;
    }
    this.enqueue(async () => {
      try {
        const next = this.unsent(batch);
        if (!next) return;
        const full = this.sendChanges(batch, next.from, await this.filter.apply(next.fresh));
        if (full) await full;
      } finally {
        this.backlog -= size;
      }
    });
  }

  /**
   * Hub callback, and the end of a catch-up that a prune raced: changes this connection needs are
   * gone from the log, so it closes with try_again_later and the reconnect gets a snapshot.
   */
  lost(error: LogPrunedError): void {
    this.ctx.log.info('connection.pruned', error.message, this.fields());
    void this.close(SYNC_CLOSE_CODES.tryAgainLater, 'changes pruned; reconnect for a snapshot');
  }

  /** What of `batch` this connection has not sent: none when it has it all. */
  private unsent(batch: TickedBatch): { from: bigint; fresh: readonly CapturedChange[] } | undefined {
    if (batch.to <= this.sent) return undefined;
    if (batch.from > this.sent) {
      throw new Error(`changes after ${batch.from} arrived while the connection is at ${this.sent}`);
    }
    const from = this.sent;
    // Usually the batch starts where this connection is: no copy of it to skip ticks.
    return { from, fresh: batch.from === from ? batch.changes : batch.changes.filter((c) => c.tick > from) };
  }

  /**
   * Sends the `changes` message for `batch` from `from` and moves the connection to its end;
   * returns the send when the socket buffer is full, for the queue to wait on.
   */
  private sendChanges(batch: TickedBatch, from: bigint, changes: ChangeJson[]): Promise<void> | undefined {
    this.sent = batch.to;
    const mapped = this.view ? this.view.outgoingChanges(changes) : changes;
    const bytes = changesMessage(batch, from, mapped);
    this.ctx.metrics?.changesSent.inc(mapped.length);
    this.ctx.status?.sent(mapped.length);
    this.ctx.metrics?.bytesOut.inc(bytes.length);
    const sent = this.sender.send(bytes);
    this.refreshAfter(batch.changes);
    return this.sender.full ? sent : undefined;
  }

  /**
   * Resolves when nothing of this connection is running any more: its handshake (a snapshot
   * holds a transaction), pushes and sends. Shutdown waits for it before closing the database.
   */
  async idle(): Promise<void> {
    await Promise.allSettled([this.starting, this.inbox, this.outgoing]);
  }

  /** Resolves once everything queued is sent and the socket buffer is small again. */
  async drained(): Promise<void> {
    await this.outgoing;
    await this.sender.drained();
  }

  /**
   * Holds a place in the send queue for a message made later: whatever is queued meanwhile goes
   * out after it. Call the returned function once, with the message or undefined (send nothing).
   */
  private reserve(): (message: ServerMessage | undefined) => void {
    let fill!: (message: ServerMessage | undefined) => void;
    const filled = new Promise<ServerMessage | undefined>((resolve) => {
      fill = resolve;
    });
    this.enqueue(async () => {
      const message = await filled;
      if (message) await this.send(message);
    });
    return fill;
  }

  private enqueue(task: () => Promise<void> | void): void {
    this.queued++;
    this.outgoing = this.outgoing.then(async () => {
      try {
        if (this.state === 'closed') return;
        await task();
      } catch (error) {
        this.fail('connection.send_failed', error);
      } finally {
        this.queued--;
      }
    });
  }

  private async push(push: PushMessage): Promise<void> {
    if (this.state !== 'live' || this.ctx.closing()) return; // resent after the client reconnects
    // A timer may fire late: no push is applied on a token that has expired.
    if (this.expired()) return;
    const work = this.applyPush(push);
    this.ctx.trackPush(work);
    await work;
  }

  /** A push's batches in the server's column names (the client's schema is another version). */
  private incomingBatches(batches: PushMessage['batches']): PushMessage['batches'] {
    const view = this.view!;
    return batches.map((batch) => ({
      ...batch,
      changes: batch.changes.map((change) => ({
        ...change,
        pk: view.incomingRow(change.table, change.pk),
        ...(change.values ? { values: view.incomingRow(change.table, change.values) } : {}),
      })),
      // The keys a mutator's local run wrote, whose server rows the ack carries back.
      ...(batch.mutation
        ? {
            mutation: {
              ...batch.mutation,
              rows: batch.mutation.rows.map((row) => ({ ...row, pk: view.incomingRow(row.table, row.pk) })),
            },
          }
        : {}),
    }));
  }

  private async applyPush(push: PushMessage): Promise<void> {
    const { ctx } = this;
    const session = this.session!;
    let results: Awaited<ReturnType<typeof applyPush>>;
    // Set when the ack carries server rows: its place in the queue, held right after a hub read
    // and before the rows are read, so changes newer than the rows go out after it.
    let slot: ((message: ServerMessage | undefined) => void) | undefined;
    let live = true;
    try {
      results = await applyPush(
        {
          db: ctx.db,
          schema: ctx.schema,
          clientId: session.clientId,
          user: session.user,
          rules: ctx.rules,
          clock: ctx.clock,
          mutators: ctx.mutators,
          beforeAck: async () => {
            live = await this.readHub();
            if (live) slot = this.reserve();
          },
        },
        this.view ? this.incomingBatches(push.batches) : push.batches,
      );
    } catch (error) {
      slot?.(undefined);
      if (is(error, SyncMessageError)) return this.sendError(error.code, error.message);
      // Pushing as a client id that another user holds: no retry can succeed.
      if (is(error, AuthError)) return this.fatal('forbidden', error.message, SYNC_CLOSE_CODES.forbidden);
      // A failure of the server, not of the batch (no rule or constraint refused it): the batch
      // stays the client's to push again, after a backoff of its own. The connection stays up, so
      // the client's downloads go on meanwhile; the cause is logged here, not told to the client.
      const first = push.batches[0]!.mutationId;
      ctx.log.error('push.failed', (error as Error)?.message ?? String(error), {
        ...this.fields(),
        mutationId: first,
        error,
      });
      if (this.state !== 'live') return;
      this.sendError(
        PUSH_FAILED,
        `the server failed to apply batch ${first} (a failure of the server, not a refusal of the batch); push it again later`,
      );
      return;
    }
    ctx.metrics?.pushes.inc();
    ctx.status?.pushed(results, {
      connectionId: this.id,
      userId: session.user.userId,
      clientId: session.clientId,
    });
    for (const result of results) {
      ctx.metrics?.mutations.inc({ status: result.status });
      if (result.status === 'rejected') ctx.metrics?.rejected(result.reason);
      if (result.status === 'applied') {
        ctx.log.debug('push.applied', `batch ${result.mutationId} applied`, {
          ...this.fields(),
          mutationId: result.mutationId,
        });
      } else {
        ctx.log.info('push.rejected', `batch ${result.mutationId} rejected: ${result.reason}`, {
          ...this.fields(),
          mutationId: result.mutationId,
        });
      }
    }
    const ack: ServerMessage = { type: 'ack', v: PROTOCOL_VERSION, results };
    if (slot) slot(ack);
    else if (live && (await this.readHub())) this.enqueue(() => this.send(ack));
    else return;
    // Shutdown waits for this push: until the ack is on the socket, ahead of the close frame.
    await this.outgoing;
  }

  /**
   * Answers a `fetch` with the server's version of the rows (read rules applied), read after the
   * hub has streamed everything committed so far and sent in its place in the queue, so every
   * change sent after it is newer than the rows.
   */
  private async fetch(fetch: FetchMessage): Promise<void> {
    if (this.state !== 'live') return;
    let refs: RowRef[];
    try {
      const view = this.view;
      refs = fetchRefs(
        this.ctx.schema,
        view ? fetch.rows.map((r) => ({ ...r, pk: view.incomingRow(r.table, r.pk) })) : fetch.rows,
      );
    } catch (error) {
      if (is(error, SyncMessageError)) return this.sendError(error.code, error.message);
      throw error;
    }
    if (!(await this.readHub())) return;
    const slot = this.reserve();
    try {
      const rows = await readRestored(this.ctx.db, refs, this.ctx.rules, this.session!.user);
      slot({ type: 'rows', v: PROTOCOL_VERSION, ...(fetch.id === undefined ? {} : { id: fetch.id }), rows });
      this.ctx.log.debug('fetch.answered', `${rows.length} rows sent again`, {
        ...this.fields(),
        rows: rows.length,
      });
    } catch (error) {
      slot(undefined);
      throw error;
    }
  }

  private async ping(ping: PingMessage, before: Promise<void>): Promise<void> {
    if (ping.pending !== undefined) this.reportedPending = ping.pending;
    await before;
    if (this.state !== 'live' || !(await this.readHub())) return;
    this.enqueue(() =>
      this.send({
        type: 'pong',
        v: PROTOCOL_VERSION,
        ...(ping.id === undefined ? {} : { id: ping.id }),
        position: String(this.sent),
      }),
    );
  }

  /** Has the hub read everything committed so far; false (and the connection dropped) if it failed. */
  private async readHub(): Promise<boolean> {
    try {
      await this.ctx.hub.read();
      return this.state === 'live';
    } catch (error) {
      this.fail('connection.read_failed', error);
      return false;
    }
  }

  private send(message: ServerFrame): Promise<void> {
    const mapped =
      this.view && !('values' in message)
        ? this.view.outgoing(message, (id) => this.shapeTables.get(id))
        : message;
    return this.sendText(JSON.stringify(mapped));
  }

  /** Sends a message's JSON text as it is (a snapshot chunk PostgreSQL built). */
  private sendText(text: string): Promise<void> {
    this.ctx.metrics?.bytesOut.inc(Buffer.byteLength(text));
    return this.sender.send(text);
  }

  /** True, and the connection closing, once the token has expired. */
  private expired(): boolean {
    if (!this.expiry.passed()) return false;
    if (this.state !== 'closed') {
      this.ctx.log.info('connection.token_expired', 'token expired; client closed', this.fields());
      this.fatal(
        'token_expired',
        'the token expired; get a new token and reconnect',
        SYNC_CLOSE_CODES.tokenExpired,
      );
    }
    return true;
  }

  private sendError(code: string, message: string, shapeId?: string): void {
    void this.send({
      type: 'error',
      v: PROTOCOL_VERSION,
      code,
      message,
      fatal: false,
      ...(shapeId === undefined ? {} : { shapeId }),
    });
  }

  /** Sends a fatal error and closes: retrying unchanged would fail the same way. */
  private fatal(code: string, message: string, closeCode: number): void {
    if (this.state === 'closed' || this.ending) return;
    this.ending = true;
    void this.send({ type: 'error', v: PROTOCOL_VERSION, code, message, fatal: true });
    this.close(closeCode, code);
  }

  /** The server failed on this connection: the client reconnects and resumes from its cursor. */
  private fail(event: string, error: unknown): void {
    if (this.state === 'closed') return;
    this.ctx.log.error(event, (error as Error)?.message ?? String(error), { ...this.fields(), error });
    this.fatal('server_error', 'the server failed; reconnect', SYNC_CLOSE_CODES.serverError);
  }

  /**
   * Closes the socket with `code` and a short `reason`; resolves once it has closed, ending it
   * forcibly when the client does not answer within `timeoutMs`.
   */
  close(code: number, reason: string, timeoutMs = 2000): Promise<void> {
    if (this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN) {
      this.socket.close(code, reason.slice(0, 120));
    }
    const timer = setTimeout(() => this.socket.terminate(), timeoutMs);
    timer.unref?.();
    return this.done.finally(() => clearTimeout(timer));
  }

  private closed(code: number, reason: string): void {
    const wasLive = this.state === 'live';
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    this.expiry.stop();
    this.ctx.admission.leave(this, this.userId);
    this.ctx.hub.detach(this);
    this.goLive();
    if (wasLive || this.session) {
      this.ctx.log.info('connection.closed', 'client disconnected', { ...this.fields(), code, reason });
    }
  }
}
