import type { Database } from '../../database/database.js';
import { is } from '../../entity.js';
import { UsageError } from '../../errors.js';
import type { AnyMutators } from '../mutators/define-mutators.js';
import { clientColumns } from '../protocol/client-columns.js';
import type { ShapeJson } from '../protocol/messages.js';
import { Backoff } from './backoff.js';
import { CatchUpPings } from './catch-up-pings.js';
import { syncedTables } from './client-tables.js';
import { SyncConnectionError } from './connection.js';
import { LocalReplica } from './local-replica.js';
import {
  type MutateFunctions,
  type MutationResult,
  mutateFunctions,
  type NoMutators,
} from './mutate-functions.js';
import { recordMutation } from './mutation-record.js';
import { type PendingWrites, readPendingWrites } from './pending-writes-report.js';
import { ShapeSubscription, ShapeSubscriptions, type SubscribeOptions } from './shape-subscriptions.js';
import { SyncEventEmitter, type SyncEvents, type SyncListener, type SyncStatus } from './sync-events.js';
import {
  type ResolvedSyncOptions,
  resolveSubscribedShape,
  resolveSyncOptions,
  type SyncClientOptions,
  type SyncShape,
} from './sync-options.js';
import { type SessionEnd, type SessionHost, SyncSession } from './sync-session.js';
import { type SyncStats, SyncTraffic } from './sync-stats.js';
import { TabRelay } from './tab-relay.js';
import { resolveWebSocket } from './websocket.js';

/** Runs `fn` after the current macrotask (setImmediate on Node, a zero timeout elsewhere). */
function soon(fn: () => void): void {
  if (typeof setImmediate === 'function') setImmediate(fn);
  else setTimeout(fn, 0);
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Keeps a SQLite database in sync with a sync server: local writes to synced tables (made with the
 * query builder or raw SQL) are captured by triggers into an outbox and pushed; the server's rows
 * arrive as snapshots and changes and are applied so that live queries re-emit. It works through
 * the Database and Driver interfaces only, so it runs wherever the database does (Node, a browser
 * on SQLite WASM). Make it with `syncClient()`.
 *
 * @example
 *   const sync = syncClient(db, { url: 'ws://localhost:4000/sync', token, shapes: [{ table: todos }] });
 *   await sync.start();
 *   await db.insert(todos).values({ listId, title: 'Milk' });
 *   await sync.flush();
 */
export class SyncClient<M extends AnyMutators = NoMutators> {
  /**
   * Runs a mutator (`syncClient({ mutators })`) at once on this database, optimistically, and
   * records it in the outbox, in order with the other local writes, for the server to run again
   * (README "Mutators"): `await sync.mutate.clearCompleted({ listId })` resolves once the local run
   * committed, live queries showing its writes. The server's outcome replaces the optimistic one
   * when its ack arrives; a mutation the server refuses (its mutator threw there) is rolled back
   * and reported by the `rejected` event. Arguments the mutator's validator refuses, or an error
   * of the local run, reject at once and record nothing.
   */
  readonly mutate: MutateFunctions<M>;
  private readonly events = new SyncEventEmitter();
  private readonly traffic = new SyncTraffic();
  /** The transactions waiting in the outbox, as the last keep-alive counted them. */
  private pendingCount: number | undefined;
  private counting = false;
  private readonly options: ResolvedSyncOptions;
  private readonly replica: LocalReplica;
  private readonly host: SessionHost;
  private current: SyncStatus = 'offline';
  private session: SyncSession | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private stopped = true;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  private opening: Promise<void> | undefined;
  private stamping: Promise<void> = Promise.resolve();
  private stampRunning = false;
  /** The pass `localCommit` asked for, until it starts. */
  private stampScheduled: Promise<void> | undefined;
  private stampAgain = false;
  private applyingRemote = false;
  private readonly flushes: (Waiter & { target: number })[] = [];
  private readonly catchUps = new CatchUpPings((id) => this.session?.sendPing(id) ?? false);
  /** The shapes wanted: the options' and those subscribed at runtime. */
  private readonly wanted: ShapeSubscriptions;
  /** Set on a database shared between browser tabs: one tab's client syncs for all (TabRelay). */
  private readonly relay: TabRelay | undefined;
  /** Whether this client syncs (always, unless another tab's client does it for this one). */
  private leading: boolean;
  /** Syncing for other tabs: the shapes each of them wants. */
  private readonly tabShapes = new Map<string, Map<string, ShapeJson>>();
  /** A follower's start(), until it hears the syncing tab. */
  private followed: (() => void) | undefined;
  /** A follower's caughtUp() calls, rejected by stop(). */
  private readonly askedCatchUps = new Set<Waiter>();

  constructor(
    private readonly db: Database,
    options: SyncClientOptions<M>,
  ) {
    this.options = resolveSyncOptions(db, options);
    this.mutate = mutateFunctions(options.mutators, (name, definition, args) =>
      this.runMutator(name, definition, args),
    );
    this.replica = new LocalReplica(db);
    this.wanted = new ShapeSubscriptions(this.options.shapes, () => {
      this.session?.syncShapes();
      this.relay?.wantsChanged();
    });
    this.relay = this.tabRelay(db.driver.sharedName);
    this.leading = this.relay === undefined;
    this.host = {
      replica: this.replica,
      options: this.options,
      shapes: this.wanted,
      columns: clientColumns(syncedTables(db.schema)),
      traffic: this.traffic,
      // Counted for the next keep-alive, not after every commit and ack: only the pings use it.
      pendingTransactions: () => {
        this.countPending();
        return this.pendingCount;
      },
      error: (error) => {
        this.events.emit('error', error);
        this.relay?.error(error);
      },
      progress: (progress) => {
        this.events.emit('progress', progress);
        this.relay?.progress(progress);
      },
      rejected: (event) => {
        this.events.emit('rejected', event);
        this.relay?.rejected(event);
      },
      remoteTables: (tables) => this.remoteTables(tables),
      cursorMoved: () => this.catchUps.cursorMoved(this.replica.cursor),
      pong: (id, position) => {
        this.traffic.measured(position, this.replica.cursor);
        this.catchUps.pong(id, position, this.replica.cursor);
      },
      outboxSettled: (firstSeq) => {
        this.outboxSettled(firstSeq);
        this.relay?.settled(firstSeq);
      },
    };
    // Capture and stamping start now, not at start(): rows the app writes before it (or before
    // this client existed) are captured, and every local transaction gets its own mutation id
    // even while stopped, so a later rejection drops only the transaction that broke the rule.
    db.onTablesChanged(syncedTables(db.schema), () => this.localCommit());
    this.ensureOpen().then(
      () => this.localCommit(),
      () => {}, // start() reports it
    );
  }

  /** Installs the client's tables and triggers once; a failed install is tried again next time. */
  private ensureOpen(): Promise<void> {
    this.opening ??= this.replica.open().catch((error) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  /** 'connecting' | 'online' | 'offline' (see `SyncStatus`). */
  get status(): SyncStatus {
    return this.current;
  }

  /**
   * Whether this client holds the connection to the server. On a database shared between browser
   * tabs (`sqliteWasm({ name })`) one started client syncs for every tab and the others follow it
   * (their status and events mirror it); elsewhere, true once started.
   */
  get ownsConnection(): boolean {
    return this.leading && this.starting !== undefined;
  }

  /** This client's id (a uuid kept in the database), once `start()` has installed it. */
  get clientId(): string | undefined {
    try {
      return this.replica.clientId;
    } catch {
      return undefined;
    }
  }

  /**
   * Syncs one more shape, on the connection the client has (a message, not a reconnect): the
   * server sends a snapshot of that shape alone while the others go on streaming, and its rows
   * stay fresh until the subscription is released. The same shape (table and filter) subscribed
   * twice is one shape with two subscriptions; the shapes given to `syncClient()` count as
   * subscribed for good. Works before `start()` and while offline: it is sent once connected, and
   * the shapes held are kept in the database, so a restart resumes them without a new snapshot.
   * Throws `UsageError` for a table outside the schema or a local one, a filter a shape cannot
   * express, a bad `ttl`, or an id another shape uses; a shape the server refuses (the read rules,
   * a column it does not know) makes `caughtUp()` reject and is reported as an `error` event.
   *
   * @example
   *   const sub = sync.subscribe({ table: todos, where: eq(todos.listId, listId) }, { ttl: 30_000 });
   *   await sub.caughtUp();
   *   sub.unsubscribe();
   */
  subscribe(shape: SyncShape, options: SubscribeOptions = {}): ShapeSubscription {
    const json = resolveSubscribedShape(this.db, shape);
    const ttl = options.ttl ?? 0;
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) {
      throw new UsageError(
        `subscribe(): ttl must be a number of milliseconds of at least 0, got ${String(ttl)}`,
      );
    }
    this.wanted.add(json, ttl);
    return new ShapeSubscription(json.id, this.wanted, () => this.caughtUp());
  }

  private async runMutator(
    name: string,
    definition: AnyMutators[string],
    args: unknown,
  ): Promise<MutationResult> {
    await this.ensureOpen();
    const mutationId = await recordMutation(this.replica, name, definition, args);
    // Stamped already, and a mutator that wrote nothing made no commit anyone hears: push now.
    if (this.leading) this.session?.requestPush();
    else this.relay?.askPush();
    return { mutationId };
  }

  /**
   * What the outbox holds: the local writes the server has not acknowledged yet (transactions,
   * row changes, mutator calls, per table, their size and the oldest one's time), for a "3
   * changes not synced yet" badge. Works stopped, offline and in every tab sharing a database.
   *
   * @example
   *   const { transactions } = await sync.pending();
   */
  async pending(): Promise<PendingWrites> {
    await this.ensureOpen();
    return readPendingWrites(this.db);
  }

  /**
   * Bytes and messages exchanged with the server since this client was made, when the server last
   * sent something, and how many changes behind its log the client was at the last catch-up ping
   * (see `SyncStats`). In a tab that follows another tab's sync, the counts are that tab's.
   *
   * @example
   *   const { bytesIn, bytesOut, lastMessageAt } = sync.stats();
   */
  stats(): SyncStats {
    return this.traffic.snapshot();
  }

  /** Listens to an event (`status`, `progress`, `rejected`, `error`); returns the unsubscribe. */
  on<E extends keyof SyncEvents>(event: E, listener: SyncListener<E>): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Installs the client's tables and triggers (idempotently), then connects. Resolves once the
   * first connection attempt was welcomed or failed (it then keeps retrying in the background);
   * rejects, and stops, when the server refuses the client for good (`AuthError` for a bad
   * token, `SchemaMismatchError` for another schema version) or the install fails (`UsageError`
   * for a synced table without a primary key).
   */
  start(): Promise<void> {
    // A start() made while a stop() is under way starts again once that stop is done (it would
    // otherwise get the old start's promise, which the stop then forgets).
    if (this.stopping) return this.stopping.then(() => this.start());
    this.starting ??= this.relay && !this.leading ? this.follow(this.relay) : this.begin();
    return this.starting;
  }

  /**
   * On a database shared between tabs: follows the tab that syncs, and queues to sync in its
   * place. Resolves once that tab is heard from (or this one syncs and its first attempt ended).
   */
  private async follow(relay: TabRelay): Promise<void> {
    if (!(await this.prepareStart())) return;
    await new Promise<void>((resolve, reject) => {
      this.followed = resolve;
      this.leadStarted = { resolve, reject };
      relay.start();
    });
  }

  /** A follower's start() while it waits: settled by the first attempt once this tab syncs. */
  private leadStarted: Waiter | undefined;

  /** This tab's client syncs now, for every tab: it reads the sync state afresh and connects. */
  private lead(relay: TabRelay): void {
    this.leading = true;
    this.followed = undefined;
    this.opening = undefined; // the client that synced before wrote the state this one reads
    relay.announce();
    const started = this.leadStarted;
    this.leadStarted = undefined;
    this.begin().then(
      () => started?.resolve(),
      (error: Error) => started?.reject(error),
    );
  }

  private tabRelay(sharedName: string | undefined): TabRelay | undefined {
    return TabRelay.for(sharedName, {
      lead: () => this.lead(this.relay!),
      currentStatus: () => this.current,
      status: (status) => {
        this.setStatus(status);
        this.followed?.();
        this.followed = undefined;
      },
      progress: (progress) => this.events.emit('progress', progress),
      rejected: (event) => this.events.emit('rejected', event),
      error: (error) => this.events.emit('error', error),
      settled: (firstSeq) => this.outboxSettled(firstSeq),
      shapes: {
        holding: (shapes) => this.wanted.holding(shapes),
        progress: (id, progress) => this.wanted.progress(id, progress),
        refused: (id, error) => this.wanted.refused(id, error),
      },
      wanted: () => this.wanted.active(),
      tabWants: (tab, shapes) => this.tabWants(tab, shapes),
      push: () => this.session?.requestPush(),
      caughtUp: () => this.caughtUp(),
    });
  }

  /** Syncing for other tabs: `tab` wants these shapes now, and no others. */
  private tabWants(tab: string, shapes: readonly ShapeJson[]): void {
    const before = this.tabShapes.get(tab) ?? new Map<string, ShapeJson>();
    const after = new Map<string, ShapeJson>();
    for (const shape of shapes) {
      if (before.has(shape.id)) {
        after.set(shape.id, shape);
        continue;
      }
      try {
        this.wanted.add(shape, 0);
        after.set(shape.id, shape);
      } catch (error) {
        this.events.emit('error', error as Error); // an id another tab uses for another shape
      }
    }
    for (const id of before.keys()) if (!after.has(id)) this.wanted.release(id);
    if (after.size > 0) this.tabShapes.set(tab, after);
    else this.tabShapes.delete(tab);
    // Shapes held already get no new report from the session: tell the tab now.
    this.relay?.reports.holding(this.wanted.held());
  }

  /** Installs the client's tables for a start; false when a stop() came meanwhile. */
  private async prepareStart(): Promise<boolean> {
    this.stopped = false;
    // Connecting from the call on, not offline while the tables are installed.
    this.setStatus('connecting');
    try {
      await this.ensureOpen();
    } catch (error) {
      this.stopped = true;
      this.starting = undefined;
      this.setStatus('offline');
      throw error;
    }
    return !this.stopped;
  }

  private async begin(): Promise<void> {
    if (!(await this.prepareStart())) return;
    this.localCommit();
    const fatal = await new Promise<Error | undefined>((first) => {
      this.loop = this.connectLoop(first);
    });
    if (fatal) {
      await this.stop();
      throw fatal;
    }
  }

  /**
   * Closes the connection and stops retrying; status becomes 'offline'. Pending `flush()` and
   * `caughtUp()` calls reject. Local writes go on being captured, and are pushed after `start()`.
   */
  stop(): Promise<void> {
    this.stopping ??= this.end().finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  private async end(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.session?.close();
    if (this.relay) {
      // The next started tab syncs in this one's place; the other tabs' shapes go with it.
      for (const tab of [...this.tabShapes.keys()]) this.tabWants(tab, []);
      this.relay.stop();
      this.leading = false;
      this.followed = undefined;
      this.leadStarted?.resolve();
      this.leadStarted = undefined;
    }
    await this.loop;
    await this.stampScheduled;
    await this.stamping;
    this.setStatus('offline');
    this.starting = undefined;
    const error = new UsageError(
      'the sync client was stopped before this finished; start() it again to go on',
    );
    for (const waiter of this.flushes.splice(0)) waiter.reject(error);
    for (const waiter of this.askedCatchUps) waiter.reject(error);
    this.askedCatchUps.clear();
    this.catchUps.rejectAll(error);
  }

  /** Resolves when every local write made before the call has been acknowledged by the server. */
  async flush(): Promise<void> {
    if (!this.starting) throw new UsageError('flush(): call start() first');
    const target = await this.replica.outboxLastSeq();
    if (target === undefined) return;
    const done = new Promise<void>((resolve, reject) => {
      this.flushes.push({ target, resolve, reject });
    });
    // An ack may have settled the rows while the target was read: look again now that it waits.
    this.outboxSettled(await this.replica.outboxFirstSeq());
    this.session?.requestPush();
    if (!this.leading) this.relay?.askPush();
    await done;
  }

  /**
   * Resolves when this client has applied every server change committed before the call: it asks
   * the server how far its stream reaches (`ping`/`pong`) and waits until the cursor gets there,
   * across reconnects.
   */
  caughtUp(): Promise<void> {
    if (!this.starting) return Promise.reject(new UsageError('caughtUp(): call start() first'));
    if (this.relay && !this.leading) {
      const relay = this.relay;
      return new Promise<void>((resolve, reject) => {
        const waiter = { resolve, reject };
        this.askedCatchUps.add(waiter);
        relay.askCaughtUp().then(() => {
          this.askedCatchUps.delete(waiter);
          resolve();
        });
      });
    }
    return this.catchUps.wait();
  }

  private setStatus(status: SyncStatus): void {
    if (status === this.current) return;
    this.current = status;
    this.events.emit('status', status);
    this.relay?.status(status);
  }

  private async connectLoop(first: (fatal: Error | undefined) => void): Promise<void> {
    const backoff = new Backoff(this.options.backoff);
    let reported = false;
    const report = (fatal?: Error) => {
      if (reported) return;
      reported = true;
      first(fatal);
    };
    while (!this.stopped) {
      const end = await this.attempt(() => {
        backoff.reset();
        report();
      });
      if (this.stopped) break;
      if (end.fatal) {
        this.events.emit('error', end.error!);
        this.stopped = true;
        this.setStatus('offline');
        report(end.error);
        break;
      }
      if (is(end.error, SyncConnectionError) && !end.tokenExpired) this.events.emit('error', end.error);
      report();
      this.setStatus('connecting');
      await this.sleep(backoff.next());
    }
    report();
  }

  private async attempt(welcomed: () => void): Promise<SessionEnd> {
    let session: SyncSession;
    try {
      const token = this.options.token;
      const value = typeof token === 'function' ? await token() : token;
      const WebSocketClass = await resolveWebSocket(this.options.WebSocket);
      if (this.stopped) return { error: undefined, fatal: false, welcomed: false, tokenExpired: false };
      session = new SyncSession(this.host, WebSocketClass, value || undefined);
    } catch (error) {
      const fatal = is(error, UsageError);
      if (!fatal) this.events.emit('error', error as Error);
      return { error: error as Error, fatal, welcomed: false, tokenExpired: false };
    }
    this.session = session;
    void session.ready.then((ok) => {
      if (!ok || this.stopped) return;
      this.setStatus('online');
      welcomed();
      this.catchUps.reconnected();
    });
    const end = await session.ended;
    this.session = undefined;
    return end;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * After a local commit, started or not: note where it ends in the outbox at once (so it gets a
   * mutation id of its own), and stamp soon, in one pass for every commit made until then. The
   * pass waits for a macrotask, so an app that commits many small transactions in a row (each
   * awaited) pays for one stamping transaction, not one per commit; until it runs, the new rows
   * are pending writes without a stamp, which count as newer than anything the server sends.
   * A pass already running means the next one runs right after it.
   */
  private localCommit(): void {
    // A tab that follows another's sync leaves its commits to that one: it hears of them. A
    // stopped client stamps its own, as on a database of its own.
    if (this.applyingRemote || !this.replica.isOpen || this.relay?.isFollowing) return;
    this.replica.noteCommit();
    this.stampScheduled ??= new Promise((resolve) =>
      soon(() => {
        this.stampScheduled = undefined;
        this.stampNow();
        resolve();
      }),
    );
  }

  private stampNow(): void {
    if (this.stampRunning) {
      this.stampAgain = true;
      return;
    }
    this.stampRunning = true;
    this.stamping = this.replica
      .stamp()
      .then(
        (ids) => {
          if (ids.length > 0) this.session?.requestPush();
        },
        (error) => this.events.emit('error', error),
      )
      .finally(() => {
        this.stampRunning = false;
        if (this.stampAgain) {
          this.stampAgain = false;
          this.stampNow();
        }
      });
  }

  private remoteTables(tables: ReadonlySet<string>): void {
    this.applyingRemote = true;
    try {
      this.db.notifyTablesChanged([...tables]);
    } finally {
      this.applyingRemote = false;
    }
  }

  /** Counts what waits in the outbox again, in the background (one count at a time). */
  private countPending(): void {
    if (this.counting) return;
    this.counting = true;
    readPendingWrites(this.db)
      .then(
        (pending) => {
          this.pendingCount = pending.transactions;
        },
        () => {},
      )
      .finally(() => {
        this.counting = false;
      });
  }

  private outboxSettled(firstSeq: number | undefined): void {
    for (let i = this.flushes.length - 1; i >= 0; i--) {
      const waiter = this.flushes[i];
      if (firstSeq !== undefined && firstSeq <= waiter.target) continue;
      this.flushes.splice(i, 1);
      waiter.resolve();
    }
  }
}

/**
 * Makes a sync client for a Database opened on SQLite (see `SyncClient` and
 * `SyncClientOptions`). It returns at once; in the background it installs the capture triggers
 * (rows the synced tables already hold go into the outbox), and it connects on `start()`. Throws `UsageError`
 * for a database that is not SQLite and for bad options.
 *
 * @example
 *   const sync = syncClient(db, {
 *     url: 'ws://localhost:4000/sync',
 *     token: () => auth.token(),
 *     shapes: [{ table: todos, where: eq(todos.listId, listId) }, { table: lists }],
 *   });
 *   await sync.start();
 */
export function syncClient<M extends AnyMutators = NoMutators>(
  db: Database<any>,
  options: SyncClientOptions<M>,
): SyncClient<M> {
  return new SyncClient(db, options);
}
