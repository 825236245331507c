import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the metrics read when scraped: the connections by state, and the change log's lag. */
export interface MetricsSources {
  connectionStates(): Iterable<string>;
  /** Seconds since the oldest change notification the server has not read yet (0: none). */
  lagSeconds(): number;
  /** Ticks the log holds past what this server has read (read from the database). */
  ticksBehind(): Promise<number>;
  /** The database pool's connections in use and waiting, where the driver tells them. */
  pool(): { total: number; idle: number; waiting: number } | undefined;
}

/**
 * A sync server's Prometheus metrics, in a registry of its own (several servers in one process
 * keep theirs apart), served as text on `/metrics` when `monitoring.metrics` is on. Labels are
 * bounded: outcomes and rejection kinds are codes, tables are the schema's.
 *
 * @example
 *   const metrics = new ServerMetrics(sources);
 *   metrics.handshakes.inc({ outcome: 'welcomed' });
 *   response.end(await metrics.registry.metrics());
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly handshakes: Counter<'outcome'>;
  readonly pushes: Counter;
  readonly mutations: Counter<'status'>;
  readonly rejections: Counter<'reason'>;
  readonly changesRead: Counter<'table'>;
  readonly changesSent: Counter;
  readonly bytesOut: Counter;
  readonly snapshots: Histogram;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    new Gauge({
      name: 'syncline_connections',
      help: 'Open WebSocket connections by state (hello: not signed in yet; syncing: in its handshake or snapshot; live)',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>([
          ['hello', 0],
          ['syncing', 0],
          ['live', 0],
        ]);
        for (const state of sources.connectionStates()) counts.set(state, (counts.get(state) ?? 0) + 1);
        for (const [state, n] of counts) if (state !== 'closed') this.set({ state }, n);
      },
    });
    this.handshakes = new Counter({
      name: 'syncline_handshakes_total',
      help: 'Hellos answered, by outcome: welcomed, or the refusal code (auth_failed, schema_mismatch, forbidden, ...)',
      labelNames: ['outcome'],
      registers,
    });
    this.pushes = new Counter({ name: 'syncline_pushes_total', help: 'Push messages applied', registers });
    this.mutations = new Counter({
      name: 'syncline_mutations_total',
      help: 'Batches (mutations) answered in acks, by status: applied or rejected',
      labelNames: ['status'],
      registers,
    });
    this.rejections = new Counter({
      name: 'syncline_rejections_total',
      help: 'Rejected batches by kind of reason: rule, constraint, mutator, too_large, other',
      labelNames: ['reason'],
      registers,
    });
    this.changesRead = new Counter({
      name: 'syncline_changes_read_total',
      help: 'Changes read from the change log, by table',
      labelNames: ['table'],
      registers,
    });
    this.changesSent = new Counter({
      name: 'syncline_changes_sent_total',
      help: 'Changes sent to clients (one per change per connection)',
      registers,
    });
    this.bytesOut = new Counter({
      name: 'syncline_bytes_out_total',
      help: 'Bytes of messages sent to clients',
      registers,
    });
    this.snapshots = new Histogram({
      name: 'syncline_snapshot_seconds',
      help: 'Time to read and send one snapshot (a handshake, a subscribe, a refresh)',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    });
    new Gauge({
      name: 'syncline_change_log_lag_seconds',
      help: 'Age of the oldest commit notification this server has not read yet (0 when caught up)',
      registers,
      collect() {
        this.set(sources.lagSeconds());
      },
    });
    new Gauge({
      name: 'syncline_change_log_ticks_behind',
      help: 'Ticks in the change log past what this server has read',
      registers,
      async collect() {
        this.set(await sources.ticksBehind().catch(() => Number.NaN));
      },
    });
    new Gauge({
      name: 'syncline_database_pool_connections',
      help: 'The database pool: connections open (total), idle, and queries waiting for one',
      labelNames: ['kind'],
      registers,
      collect() {
        const pool = sources.pool();
        if (!pool) return;
        this.set({ kind: 'total' }, pool.total);
        this.set({ kind: 'idle' }, pool.idle);
        this.set({ kind: 'waiting' }, pool.waiting);
      },
    });
  }

  /** Counts one rejected batch under a bounded kind of its reason. */
  rejected(reason: string): void {
    this.rejections.inc({ reason: rejectionKind(reason) });
  }
}

/** A rejection's reason, as one of a few kinds (a label must not take unbounded values). */
function rejectionKind(reason: string): string {
  if (/rule|not allowed|forbidden|may not/i.test(reason)) return 'rule';
  if (/constraint|violates|duplicate|foreign key|not-null|null value/i.test(reason)) return 'constraint';
  if (/mutator/i.test(reason)) return 'mutator';
  if (/too large|too big|bytes/i.test(reason)) return 'too_large';
  return 'other';
}
