import { createRequire } from 'node:module';
import type pg from 'pg';
import type { Database } from '../../database/database.js';
import { DatabaseError, UsageError } from '../../errors.js';
import type { AnyTable } from '../../schema/table.js';
import { ADVISORY_LOCK_CLASS } from './capture.js';
import {
  type DecodedChange,
  LogicalLogWriter,
  type LogicalWriter,
  lsnText,
  parseLsn,
  rowKey,
} from './logical-apply.js';
import { CaptureBarrier } from './logical-barrier.js';
import { dropSlot, ensureSlot, type LogicalNames } from './logical-install.js';
import type { ServerLog } from './server-log.js';

/**
 * How the logical consumer behaves: where it connects (`connection`, default: the driver's own
 * settings), how much WAL its slot may hold back before it is dropped and made again
 * (`maxRetainedWalBytes`, default 1 GiB; the clients then take a fresh snapshot), how long a push
 * or a hub read waits for the consumer before it fails (`waitTimeoutMs`, default 10 s), and how
 * often a server without the slot tries to take it and the WAL held back is checked
 * (`checkEveryMs`, default 1 s).
 *
 * @example
 *   createSyncServer({ ..., capture: 'logical', logical: { maxRetainedWalBytes: 256 << 20 } });
 */
export interface LogicalCaptureOptions {
  readonly connection?: string | pg.ClientConfig;
  readonly maxRetainedWalBytes?: number;
  readonly waitTimeoutMs?: number;
  readonly checkEveryMs?: number;
}

/** Changes held before they are written, within the consumer's open transaction. */
const FLUSH_CHANGES = 2000;
/** Upstream transactions at most in one transaction of the consumer. */
const FLUSH_TRANSACTIONS = 500;
/** Items queued from the stream past which the stream is paused (backpressure). */
const PAUSE_AT = 10_000;

type Item =
  | { readonly kind: 'data'; readonly message: PgoutputMessage }
  | { readonly kind: 'keepalive'; readonly lsn: bigint; readonly respond: boolean };

/** The pgoutput messages the consumer reads (pg-logical-replication's decoded forms). */
interface PgoutputRelation {
  tag: 'relation';
  schema: string;
  name: string;
  columns: { name: string; typeOid: number; parser: (raw: unknown) => unknown }[];
}
type PgoutputMessage =
  | { tag: 'begin'; commitLsn: string | null }
  | { tag: 'commit'; commitEndLsn: string | null }
  | PgoutputRelation
  | { tag: 'insert'; relation: PgoutputRelation; new: Record<string, unknown> }
  | {
      tag: 'update';
      relation: PgoutputRelation;
      old: Record<string, unknown> | null;
      new: Record<string, unknown>;
    }
  | { tag: 'delete'; relation: PgoutputRelation; old: Record<string, unknown> | null }
  | { tag: 'message'; transactional: boolean; prefix: string; content: Uint8Array }
  | { tag: 'type' | 'origin' | 'truncate' };

interface ReplicationService {
  on(event: string, listener: (...args: never[]) => void): unknown;
  subscribe(plugin: unknown, slot: string, from: string): Promise<unknown>;
  acknowledge(lsn: string, ping?: boolean): Promise<boolean>;
  destroy(): Promise<unknown>;
}

/** pg-logical-replication, loaded only when this mode is used (an optional peer dependency). */
function loadReplication(): {
  LogicalReplicationService: new (config: pg.ClientConfig, options: unknown) => ReplicationService;
  PgoutputPlugin: new (options: unknown) => unknown;
} {
  try {
    return createRequire(import.meta.url)('pg-logical-replication');
  } catch (error) {
    throw new UsageError(
      "capture: 'logical' needs the package pg-logical-replication: npm install pg-logical-replication",
      { cause: error },
    );
  }
}

interface Waiter {
  readonly lsn: bigint;
  readonly resolve: () => void;
}

/**
 * The consumer of the slot (docs/design.md section 4, "Capture modes"): while this server holds
 * the slot it decodes each committed transaction of the synced tables (pgoutput) and writes what
 * the triggers would have written, the change log and the stamps, in transactions of its own that
 * also record the upstream commit position; only after such a commit is the position confirmed to
 * the slot, so a restart resumes exactly once. A server that does not hold the slot (another
 * does) tries to take it every `checkEveryMs`, and waits by reading the slot's confirmed position.
 *
 * @example
 *   const consumer = new LogicalConsumer(db, schema.tableList, names, log, {});
 *   consumer.start();
 *   await consumer.caughtUp(); // every commit so far is in the change log
 */
export class LogicalConsumer {
  private readonly writer: LogicalLogWriter;
  private readonly config: pg.ClientConfig;
  private readonly waitTimeoutMs: number;
  private readonly maxRetainedWalBytes: number;
  private readonly checkEveryMs: number;
  private service: ReplicationService | undefined;
  private applier: pg.Client | undefined;
  private holding = false;
  private connecting = false;
  private closed = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** The position confirmed to the slot by this server. */
  private acked = 0n;
  /** The upstream commit position recorded in `_syncline_logical_state` by the last commit. */
  private applied = 0n;
  private readonly queue: Item[] = [];
  private draining = false;
  private paused = false;
  private current: { skip: boolean; writer: LogicalWriter | undefined } | undefined;
  private buffer: DecodedChange[] = [];
  private bufferedTransactions = 0;
  private lastEnd = 0n;
  private open = false;
  private readonly waiters = new Set<Waiter>();
  private readonly barrier: CaptureBarrier;
  private readonly jsonColumns = new Map<string, Set<string>>();

  constructor(
    private readonly db: Database,
    tables: readonly AnyTable[],
    private readonly names: LogicalNames,
    private readonly log: ServerLog,
    options: LogicalCaptureOptions,
  ) {
    this.writer = new LogicalLogWriter(db, tables, names.namespace);
    for (const table of tables) {
      this.jsonColumns.set(
        table.$name,
        new Set(table.$columnList.filter((c) => LogicalLogWriter.isJsonColumn(db, c)).map((c) => c.name)),
      );
    }
    this.config = connectionConfig(db, options.connection);
    this.waitTimeoutMs = options.waitTimeoutMs ?? 10_000;
    this.maxRetainedWalBytes = options.maxRetainedWalBytes ?? 1 << 30;
    this.checkEveryMs = options.checkEveryMs ?? 1000;
    this.barrier = new CaptureBarrier(this.config, this.waitTimeoutMs);
    loadReplication();
  }

  /** Starts taking the slot (now, and again every `checkEveryMs` while another server holds it). */
  start(): void {
    const tick = () => {
      if (this.closed) return;
      void this.checkWal()
        .catch((error: Error) =>
          this.log.error('capture.check_failed', `checking the replication slot failed: ${error.message}`, {
            error,
          }),
        )
        .then(() => this.take());
    };
    tick();
    this.timer = setInterval(tick, this.checkEveryMs);
    this.timer.unref?.();
  }

  /** True while this server holds the slot and decodes. */
  get isHolding(): boolean {
    return this.holding;
  }

  /**
   * Resolves once every transaction committed before the call is in the change log: a barrier
   * transaction committed after the call (shared with the waiters that arrive while one is being
   * committed), then the wait for the consumer past it. Fails with a DatabaseError after
   * `waitTimeoutMs` (no server consumes the slot, or it is far behind).
   */
  async caughtUp(): Promise<void> {
    const deadline = Date.now() + this.waitTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.behind()), this.waitTimeoutMs);
    });
    try {
      const lsn = await Promise.race([this.barrier.pass(), late]);
      // The barrier's commit ends after its message: a consumer past the message is past the commit.
      await this.waitFor(lsn + 1n, deadline);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Resolves once the consumer (this server's or another's) has confirmed `lsn`: every transaction
   * that committed before it is in the change log. Fails with a DatabaseError at `deadline`.
   */
  private async waitFor(lsn: bigint, deadline: number): Promise<void> {
    if (this.acked >= lsn) return;
    if (!this.holding) {
      // Another server holds the slot: its confirmed position says how far it has logged.
      for (let pause = 1; Date.now() < deadline; pause = Math.min(pause * 2, 20)) {
        if (this.holding) break;
        const result = await this.db.run({
          sql: 'SELECT confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = $1',
          params: [this.names.slot, lsnText(lsn)],
          arrayMode: false,
          needsBigInt: false,
        });
        if ((result.rows[0] as { done: boolean } | undefined)?.done) return;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
      if (!this.holding) throw this.behind();
    }
    await new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(
        () => {
          this.waiters.delete(waiter);
          reject(this.behind());
        },
        Math.max(1, deadline - Date.now()),
      );
      const waiter: Waiter = {
        lsn,
        resolve: () => {
          clearTimeout(timeout);
          resolve();
        },
      };
      this.waiters.add(waiter);
      this.settleWaiters();
    });
  }

  private behind(): DatabaseError {
    return new DatabaseError(
      `logical capture: the change log did not catch up with the database within ${this.waitTimeoutMs} ms (logical.waitTimeoutMs); ` +
        'no sync server is consuming the replication slot (or it is far behind); the write is tried again later',
      '57P03',
    );
  }

  private settleWaiters(): void {
    for (const waiter of this.waiters) {
      if (waiter.lsn <= this.acked) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  /** Confirms `lsn` to the slot: everything before it is in the change log. */
  private ack(lsn: bigint): void {
    if (lsn <= this.acked) return;
    this.acked = lsn;
    // The library confirms the position it is given plus one; the slot must get `lsn` itself.
    void this.service?.acknowledge(lsnText(lsn - 1n)).catch(() => {});
    this.settleWaiters();
  }

  /** Tries to take the slot, unless this server holds it or another server does. */
  private async take(): Promise<void> {
    if (this.closed || this.holding || this.connecting) return;
    this.connecting = true;
    try {
      const row = await this.db.run({
        sql: 'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
        params: [this.names.slot],
        arrayMode: false,
        needsBigInt: false,
      });
      const slot = row.rows[0] as { active: boolean } | undefined;
      if (!slot) await ensureSlot(this.db, this.names);
      else if (slot.active) return;
      await this.subscribe();
    } catch (error) {
      this.connecting = false;
      await this.release(error as Error);
    } finally {
      this.connecting = false;
    }
  }

  private async subscribe(): Promise<void> {
    const { default: Pg } = await import('pg');
    const applier = new Pg.Client(this.config);
    applier.on('error', () => {});
    await applier.connect();
    this.applier = applier;
    const state = await applier.query(
      'SELECT applied_lsn::text AS lsn FROM _syncline_logical_state WHERE slot = $1',
      [this.names.slot],
    );
    this.applied = parseLsn((state.rows[0] as { lsn: string } | undefined)?.lsn ?? '0/0');
    const { LogicalReplicationService, PgoutputPlugin } = loadReplication();
    const service = new LogicalReplicationService(this.config, {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: false },
    });
    this.service = service;
    service.on('data', (_lsn: string, message: PgoutputMessage) => this.enqueue({ kind: 'data', message }));
    service.on('heartbeat', (lsn: string, _time: number, respond: boolean) =>
      this.enqueue({ kind: 'keepalive', lsn: parseLsn(lsn), respond }),
    );
    service.on('error', (error: Error) => void this.release(error));
    service.on('start', () => {
      this.holding = true;
      this.log.info('capture.slot_taken', `consuming the replication slot ${this.names.slot}`, {
        slot: this.names.slot,
        from: lsnText(this.applied),
      });
    });
    const plugin = new PgoutputPlugin({
      protoVersion: 1,
      publicationNames: [this.names.publication],
      messages: true,
    });
    service.subscribe(plugin, this.names.slot, lsnText(this.applied)).then(
      () => void this.release(undefined),
      (error: Error) => void this.release(error),
    );
  }

  /** Lets go of the slot after an error or the end of the stream; what was not committed is decoded again. */
  private async release(error: Error | undefined): Promise<void> {
    const service = this.service;
    const applier = this.applier;
    const wasHolding = this.holding;
    this.service = undefined;
    this.applier = undefined;
    this.holding = false;
    this.queue.length = 0;
    this.buffer = [];
    this.bufferedTransactions = 0;
    this.current = undefined;
    this.open = false;
    this.paused = false;
    this.acked = 0n;
    await service?.destroy().catch(() => {});
    await applier?.end().catch(() => {});
    if (this.closed) return;
    const active = error && /is active for PID/i.test(error.message);
    if (error && !active) {
      this.log.warn('capture.slot_lost', `the logical consumer stopped: ${error.message}; it starts again`, {
        slot: this.names.slot,
        error,
      });
    } else if (wasHolding) {
      this.log.info('capture.slot_released', `the replication slot ${this.names.slot} was let go`);
    }
  }

  private enqueue(item: Item): void {
    this.queue.push(item);
    if (!this.paused && this.queue.length > PAUSE_AT) {
      this.paused = true;
      this.stream()?.pause();
    }
    if (!this.draining) void this.drain();
  }

  /** The replication connection's socket, to pause it while the queue is long (backpressure). */
  private stream(): { pause(): void; resume(): void } | undefined {
    return (this.service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })
      ?._connection?.stream;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    const service = this.service;
    try {
      while (this.queue.length > 0 && this.service === service) {
        const item = this.queue.shift()!;
        if (this.paused && this.queue.length < PAUSE_AT / 10) {
          this.paused = false;
          this.stream()?.resume();
        }
        await this.handle(item);
      }
    } catch (error) {
      if (this.service === service) await this.release(error as Error);
    } finally {
      this.draining = false;
    }
  }

  private async handle(item: Item): Promise<void> {
    if (item.kind === 'keepalive') {
      // Everything before the walsender's position has been sent: when all of it is committed,
      // the position is confirmed (writes to other tables never reach the consumer otherwise).
      if (!this.current && this.bufferedTransactions > 0) await this.flush(true);
      if (!this.current && !this.open && this.buffer.length === 0) this.ack(item.lsn);
      else if (item.respond) void this.service?.acknowledge(lsnText(this.acked > 0n ? this.acked - 1n : 0n));
      return;
    }
    const message = item.message;
    switch (message.tag) {
      case 'relation':
        // Values stay PostgreSQL's text (the log's JSON is built from them in SQL); json columns
        // are parsed, so they travel as JSON.
        for (const column of message.columns) {
          const json = this.jsonColumns.get(message.name)?.has(column.name);
          column.parser = json ? (raw) => JSON.parse(raw as string) : (raw) => raw;
        }
        return;
      case 'begin':
        this.current = {
          skip: message.commitLsn !== null && parseLsn(message.commitLsn) < this.applied,
          writer: undefined,
        };
        return;
      case 'insert':
      case 'update':
      case 'delete':
        this.decoded(message);
        // A big transaction is written in parts, in the consumer's one open transaction.
        if (this.buffer.length >= FLUSH_CHANGES) await this.flush(false);
        return;
      case 'message':
        await this.message(message);
        return;
      case 'commit': {
        const current = this.current;
        this.current = undefined;
        if (!current || message.commitEndLsn === null) return;
        const end = parseLsn(message.commitEndLsn);
        if (current.skip || (this.buffer.length === 0 && !this.open && this.bufferedTransactions === 0)) {
          // Nothing of it to log (a barrier, a push that wrote nothing, one applied before a
          // restart) and nothing pending: everything before its end is logged, so it is confirmed
          // at once, without a transaction of the consumer.
          if (this.buffer.length === 0 && !this.open && this.bufferedTransactions === 0) this.ack(end);
          return;
        }
        this.lastEnd = end;
        this.bufferedTransactions++;
        // Commits while more data is queued share one transaction of the consumer.
        if (
          this.queue[0]?.kind !== 'data' ||
          this.buffer.length >= FLUSH_CHANGES ||
          this.bufferedTransactions >= FLUSH_TRANSACTIONS
        ) {
          await this.flush(true);
        }
        return;
      }
      default:
        return;
    }
  }

  private decoded(message: Extract<PgoutputMessage, { tag: 'insert' | 'update' | 'delete' }>): void {
    const current = this.current;
    if (!current || current.skip || message.relation.schema !== this.names.namespace) return;
    const op = message.tag === 'insert' ? 'I' : message.tag === 'update' ? 'U' : 'D';
    this.buffer.push({
      table: message.relation.name,
      op,
      values: message.tag === 'delete' ? undefined : { ...message.new },
      old: message.tag === 'insert' ? undefined : { ...(message.old ?? {}) },
      writer: current.writer,
    });
  }

  private async message(message: Extract<PgoutputMessage, { tag: 'message' }>): Promise<void> {
    const current = this.current;
    if (!current || current.skip || !message.transactional) return;
    const text = Buffer.from(message.content).toString('utf8');
    if (message.prefix === 'syncline') {
      const w = JSON.parse(text) as {
        h: string;
        o: string;
        m: string;
        u: string;
        x: string;
        w: string | null;
      };
      const rows = w.w
        ? (JSON.parse(w.w) as { t: string; k: Record<string, unknown>; h: string; m: number }[])
        : [];
      current.writer = w.h
        ? {
            hlc: w.h,
            origin: w.o || undefined,
            mutation: w.m ? Number(w.m) : undefined,
            updating: w.u ?? '',
            mutator: Boolean(w.x),
            rows:
              rows.length > 0
                ? new Map(rows.map((r) => [rowKey(r.t, r.k), { hlc: r.h, mutation: Number(r.m) }]))
                : undefined,
          }
        : undefined;
    } else if (message.prefix === 'syncline-truncate') {
      const part = JSON.parse(text) as { t: string; rows: Record<string, unknown>[] };
      for (const row of part.rows ?? []) {
        this.buffer.push({ table: part.t, op: 'D', values: undefined, old: row, writer: current.writer });
      }
      if (this.buffer.length >= FLUSH_CHANGES) return this.flush(false);
    }
  }

  /** Writes what is buffered; with `commit`, commits and confirms the last commit to the slot. */
  private async flush(commit: boolean): Promise<void> {
    const applier = this.applier!;
    const run = async (text: string, params: unknown[]) =>
      (await applier.query(text, params)).rows as Record<string, unknown>[];
    if (!this.open) {
      await applier.query('BEGIN');
      this.open = true;
      const [state] = await run(
        'SELECT applied_lsn::text AS lsn FROM _syncline_logical_state WHERE slot = $1 FOR UPDATE',
        [this.names.slot],
      );
      if (state && parseLsn(state.lsn as string) > this.applied) {
        // Another consumer (one that lost the slot with a commit in flight) went further.
        throw new Error('another logical consumer applied changes this one was about to apply');
      }
    }
    const changes = this.buffer;
    this.buffer = [];
    await this.writer.write(
      run,
      changes,
      this.lastEnd > this.applied ? this.lastEnd : this.applied,
      this.names.slot,
    );
    if (!commit) return;
    await applier.query('COMMIT');
    this.open = false;
    this.bufferedTransactions = 0;
    if (this.lastEnd > this.applied) this.applied = this.lastEnd;
    this.log.debug('capture.applied', `logged ${changes.length} changes up to ${lsnText(this.applied)}`, {
      changes: changes.length,
      lsn: lsnText(this.applied),
    });
    this.ack(this.applied);
  }

  /**
   * Drops and makes again a slot that holds back more WAL than `maxRetainedWalBytes` (its consumer
   * is dead or far behind), so the disk does not fill up: the changes in the dropped part of the WAL
   * are lost to the log, so the log is cut there and every client takes a fresh snapshot (as after a
   * prune: the hubs let their connections go). One server does it, under an advisory lock.
   */
  private async checkWal(): Promise<void> {
    const result = await this.db.run({
      sql: `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 AS retained, active_pid AS pid
              FROM pg_replication_slots WHERE slot_name = $1`,
      params: [this.names.slot],
      arrayMode: false,
      needsBigInt: false,
    });
    const slot = result.rows[0] as { retained: number | null; pid: number | null } | undefined;
    if (!slot || (slot.retained ?? 0) <= this.maxRetainedWalBytes) return;
    const { default: Pg } = await import('pg');
    const admin = new Pg.Client(this.config);
    admin.on('error', () => {});
    await admin.connect();
    try {
      const lock = await admin.query(
        "SELECT pg_try_advisory_lock($1, hashtext(current_schema() || '/slot')) AS locked",
        [ADVISORY_LOCK_CLASS],
      );
      if (!(lock.rows[0] as { locked: boolean }).locked) return;
      this.log.warn(
        'capture.slot_dropped',
        `the replication slot ${this.names.slot} held back ${Math.round((slot.retained ?? 0) / 1048576)} MiB of WAL, over logical.maxRetainedWalBytes: it is dropped and made again; changes in between are lost to the change log, and every client takes a fresh snapshot`,
        { slot: this.names.slot, retainedBytes: slot.retained },
      );
      if (slot.pid !== null) await admin.query('SELECT pg_terminate_backend($1)', [slot.pid]);
      await dropSlot(this.db, this.names.slot);
      await ensureSlot(this.db, this.names);
      // The log is cut: every kept change goes, and the last tick moves on by one, so no cursor
      // (even one that had read everything) is served from the log again.
      await admin.query('BEGIN');
      await admin.query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || '/ticks'))", [
        ADVISORY_LOCK_CLASS,
      ]);
      await admin.query(`WITH gone AS (DELETE FROM _syncline_ticks RETURNING change_id)
        DELETE FROM _syncline_changes WHERE id IN (SELECT change_id FROM gone)`);
      await admin.query('UPDATE _syncline_reader_state SET last_tick = last_tick + 1 WHERE id = 1');
      await admin.query('COMMIT');
      await admin.query("SELECT pg_notify('syncline_changes', '')");
    } finally {
      await admin.end().catch(() => {});
    }
  }

  /** Stops consuming (the slot is kept: the next server carries on from it). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.barrier.close();
    await this.release(undefined);
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters.clear();
  }
}

/** The replication connection's settings: the option, else the driver's pool settings. */
function connectionConfig(db: Database, connection: string | pg.ClientConfig | undefined): pg.ClientConfig {
  if (typeof connection === 'string') return { connectionString: connection };
  if (connection) return connection;
  const pool = (db.driver as unknown as { pool?: { options?: pg.ClientConfig } }).pool;
  if (!pool?.options) {
    throw new UsageError(
      "capture: 'logical' could not read the driver's connection settings; give logical.connection (a connection string)",
    );
  }
  return pool.options;
}
