import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { type Database, openDatabase } from '../../database/database.js';
import type { Driver } from '../../database/driver.js';
import { UsageError } from '../../errors.js';
import type { Schema } from '../../schema/schema.js';
import { type SQL, sql } from '../../sql/sql.js';
import type { AnyMutators } from '../mutators/define-mutators.js';
import { decodeHlc, HybridLogicalClock } from '../protocol/hlc.js';
import { MAX_ROW_BYTES } from '../protocol/message-size.js';
import { DEFAULT_MESSAGE_LIMITS, type MessageLimits } from '../protocol/messages.js';
import { createAuthenticator, type SyncAuth } from './auth.js';
import { CHANGES_CHANNEL, installCapture } from './capture.js';
import { ChangeHub } from './change-hub.js';
import { ChangeLogReader } from './change-log-reader.js';
import type { ClientSchemaOptions } from './client-schema.js';
import { SYNC_CLOSE_CODES } from './close-codes.js';
import { type ConnectionContext, SyncConnection } from './connection.js';
import { ConnectionAdmission } from './connection-admission.js';
import { httpEndpoints, type MonitoringOptions, type ReadyChecks } from './http-endpoints.js';
import { type LogicalCaptureOptions, LogicalConsumer } from './logical-consumer.js';
import { installLogicalCapture, removeLogicalCapture } from './logical-install.js';
import { CaughtUpReader } from './logical-reader.js';
import { registerLogicalCapture } from './logical-writer.js';
import { RuleSet, type SyncRules } from './rules.js';
import { SnapshotSlots } from './semaphore.js';
import { ServerLog, type ServerLogOptions } from './server-log.js';
import { ServerMetrics } from './server-metrics.js';
import { StatusBoard } from './status-board.js';

/**
 * The sync server's limits: the message limits it enforces and announces in `welcome` (bytes,
 * nesting, shapes, batches, changes per batch), plus
 * `maxConnections` (default 10,000 signed-in connections; past it a new socket is refused with
 * HTTP 503), `maxConnectionsPerUser` (default 50; one more is closed with `tooManyConnections`),
 * `maxUnauthenticated` (default 100 sockets not signed in yet, counted apart from
 * `maxConnections`; at the cap the one idle longest without a hello is closed to make room),
 * `helloTimeoutMs` (default 5 s from connect to signed in: hello received and its token checked),
 * `maxConcurrentSnapshots` (default 4 snapshots at once, 1 on PGlite, each holding a pooled
 * connection in a transaction; keep it below the pool's size, node-postgres's default being 10;
 * the others wait; one user has at most half of them, so other users' first syncs go on),
 * `drainTimeoutMs` (default 30 s: a client that reads nothing for that long while the server waits
 * on it is closed with `tryAgainLater`; a snapshot's transaction also gets twice that as
 * `idle_in_transaction_session_timeout`), `maxBufferedBytes` (default 16 MiB: no message is sent
 * while more than that waits unread; the client is closed with `tryAgainLater` instead),
 * `maxProtocolErrors` (default 100 messages refused, as invalid or as more requests than the server
 * queues: one push behind the one applied, four pings; one more closes with `policyViolation`),
 * `snapshotChunkRows` (default 2,000 rows per `snapshot` message) and `snapshotChunkBytes` (default
 * 1 MiB: a chunk also ends once its rows reach that size; one bigger row is a chunk of its own),
 * `logPageBytes` (default 1 MiB: a page read from the change log, for a catch-up or for the live
 * stream, ends at 1,000 changes or that many bytes), `changeWindowBytes` (default 32 MiB: the
 * recent changes kept in memory are bounded in bytes too), `maxRowBytes` (default 16 MiB: a write
 * that makes a synced row bigger is refused by the capture triggers, SQLSTATE 22001, so a push
 * that does is rejected), and
 * `maxBacklogChanges` (default 100,000: a live client that falls this many changes behind, as
 * with a bulk write of more rows than that, is dropped and catches up from the log, page by page,
 * when it reconnects) and `changeWindow` (default 10,000: how
 * many recent changes stay in memory, so a client only slightly behind catches up without a query)
 * and `changeRetentionMs` (default 7 days: changes older than that are pruned from the change log,
 * checked at start and then every hour or every `changeRetentionMs`, whichever is shorter; a client
 * whose cursor is older than what is kept gets a fresh snapshot when it connects).
 *
 * @example
 *   createSyncServer({ ..., limits: { maxConnections: 500, maxMessageBytes: 4 << 20 } });
 */
export interface SyncServerLimits extends MessageLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxUnauthenticated: number;
  readonly helloTimeoutMs: number;
  readonly maxConcurrentSnapshots: number;
  readonly drainTimeoutMs: number;
  readonly maxBufferedBytes: number;
  readonly maxProtocolErrors: number;
  readonly snapshotChunkRows: number;
  readonly snapshotChunkBytes: number;
  readonly logPageBytes: number;
  readonly changeWindowBytes: number;
  readonly maxRowBytes: number;
  readonly maxBacklogChanges: number;
  readonly changeWindow: number;
  readonly changeRetentionMs: number;
}

/**
 * What `createSyncServer` takes: the app's schema, the PostgreSQL (or PGlite) driver to keep it in,
 * how to authenticate clients, the read and write rules (without them every authenticated user
 * may read and write every synced table, and the server warns so), limits, logging, and the URL
 * path clients connect to (default `/sync`).
 *
 * @example
 *   const options: SyncServerOptions<typeof appSchema> = {
 *     schema: appSchema, database: postgres(process.env.DATABASE_URL!), auth: { jwtSecret },
 *   };
 */
export interface SyncServerOptions<TSchema extends Schema = Schema> {
  readonly schema: TSchema;
  readonly database: Driver;
  readonly auth: SyncAuth;
  readonly rules?: SyncRules<TSchema>;
  readonly limits?: Partial<SyncServerLimits>;
  readonly log?: ServerLogOptions;
  readonly path?: string;
  /**
   * Clients built with other schema versions (apps not updated yet, devices offline for a week):
   * served when their columns fit this schema (see `ClientSchemaOptions`).
   */
  readonly clientSchemas?: ClientSchemaOptions;
  /**
   * The mutators clients may push (`defineMutators`, README "Mutators"): run here, in the push's
   * transaction, as the authoritative outcome. Give the object the clients have, or a copy with a
   * server-only `run` in place of some. A pushed mutation this set lacks is rejected.
   */
  readonly mutators?: AnyMutators;
  /**
   * What operators see: `/healthz` and `/readyz` are always served; `metrics: true` adds
   * `/metrics` (Prometheus text), behind `adminToken` when one is set (see `MonitoringOptions`).
   */
  readonly monitoring?: MonitoringOptions;
  /**
   * How changes are captured (docs/design.md section 4, "Capture modes"): 'triggers' (the
   * default: triggers on the synced tables; works everywhere, PGlite and managed PostgreSQL
   * included) or 'logical' (logical replication: no work on the writers' path; needs PostgreSQL
   * with wal_level = logical, a role with REPLICATION, and the package pg-logical-replication).
   */
  readonly capture?: 'triggers' | 'logical';
  /** Logical mode's settings (see `LogicalCaptureOptions`). */
  readonly logical?: LogicalCaptureOptions;
}

/**
 * A running sync server. `db` is its Database: backend code that writes through it (or through any
 * other PostgreSQL connection) reaches clients. `listen()` opens the WebSocket endpoint;
 * `close()` shuts down gracefully and is safe to call twice.
 *
 * @example
 *   await server.listen({ port: 4000 });
 *   console.log(server.url); // ws://127.0.0.1:4000/sync
 */
export interface SyncServer<TSchema extends Schema = Schema> {
  readonly db: Database<TSchema>;
  /** Starts accepting connections; port 0 (the default) takes a free port. */
  listen(options?: { port?: number; host?: string }): Promise<void>;
  /** The port listened on; throws before `listen()`. */
  readonly port: number;
  /** `ws://host:port/path`; throws before `listen()`. */
  readonly url: string;
  /** Open connections, including those still in their handshake or not signed in. */
  readonly connections: number;
  /**
   * Deletes changes older than `olderThanMs` (default: `limits.changeRetentionMs`) from the change
   * log now, as the server does on its own every hour; clients whose cursor is older then get a
   * fresh snapshot when they connect. Returns how many changes went.
   */
  pruneChangeLog(options?: { olderThanMs?: number }): Promise<{ changes: number }>;
  /**
   * Stops accepting connections, waits for pushes in flight (at most `timeoutMs`, default 5 s),
   * closes every connection with code 1001 and `reason` (default 'server shutting down'), stops
   * listening for changes and closes the database.
   */
  close(options?: { reason?: string; timeoutMs?: number }): Promise<void>;
}

const DEFAULT_LIMITS: SyncServerLimits = {
  ...DEFAULT_MESSAGE_LIMITS,
  maxConnections: 10_000,
  maxConnectionsPerUser: 50,
  maxUnauthenticated: 100,
  helloTimeoutMs: 5000,
  maxConcurrentSnapshots: 4,
  drainTimeoutMs: 30_000,
  maxBufferedBytes: 16 << 20,
  maxProtocolErrors: 100,
  snapshotChunkRows: 2000,
  snapshotChunkBytes: 1 << 20,
  logPageBytes: 1 << 20,
  changeWindowBytes: 32 << 20,
  maxRowBytes: MAX_ROW_BYTES,
  maxBacklogChanges: 100_000,
  changeWindow: 10_000,
  changeRetentionMs: 7 * 24 * 3600_000,
};

/** How often the change log is pruned at most: once an hour. */
const PRUNE_EVERY_MS = 3600_000;

function checkLimits(limits: Partial<SyncServerLimits> | undefined, driver: Driver): SyncServerLimits {
  // PGlite has one session: two snapshots could not read at once, and each would hold back the
  // pushes of everyone else while it waits for its client.
  const snapshots = driver.name === 'pglite' ? 1 : DEFAULT_LIMITS.maxConcurrentSnapshots;
  const all = { ...DEFAULT_LIMITS, maxConcurrentSnapshots: snapshots, ...limits };
  for (const [name, value] of Object.entries(all)) {
    if (!Number.isInteger(value) || (value as number) < (name === 'maxShapes' ? 0 : 1)) {
      throw new UsageError(
        `createSyncServer(): limits.${name} must be a whole number of at least ${name === 'maxShapes' ? 0 : 1}, got ${String(value)}`,
      );
    }
  }
  return all;
}

function messageLimits(all: SyncServerLimits): MessageLimits {
  const { maxMessageBytes, maxDepth, maxShapes, maxBatches, maxChangesPerBatch } = all;
  return { maxMessageBytes, maxDepth, maxShapes, maxBatches, maxChangesPerBatch };
}

/**
 * Moves a fresh server clock past the newest stamps in the log, so a restarted server never
 * stamps below what it (or a client) stamped before. The last thousand changes hold the newest
 * stamps, short of a clock gone backwards, and reading them costs one index scan.
 */
async function seedClock(db: Database, clock: HybridLogicalClock, log: ServerLog): Promise<void> {
  const rows = await db.execute<{ hlc: string | null }>(
    sql`SELECT max(hlc COLLATE "C") AS hlc FROM (SELECT hlc FROM _syncline_changes ORDER BY id DESC LIMIT 1000) AS recent`,
  );
  const newest = rows[0]?.hlc;
  if (!newest) return;
  try {
    clock.receive(decodeHlc(newest));
  } catch (error) {
    log.warn('clock.seed', `the newest stamp in the change log was not merged: ${(error as Error).message}`);
  }
}

/** Waits for `work`, but no longer than `ms`. */
async function waitAtMost(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([work, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Answers an upgrade the server will not take, in plain HTTP, and hangs up. */
function refuseUpgrade(socket: Duplex, status: number, text: string, body: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Starts a sync server (docs/design.md section 4, docs/sync-internals.md "Server flow"): opens the
 * schema on `database` (running migrations as `openDatabase` does), installs change capture,
 * listens for `syncline_changes` notifications and reads the change log once for every client.
 * Call `listen()` to accept WebSocket connections. Throws `UsageError` for a SQLite driver, a
 * driver without notifications, or a bad `auth`, `limits` or `path` option.
 *
 * @example
 *   const server = await createSyncServer({
 *     schema: appSchema,
 *     database: postgres({ connectionString: process.env.DATABASE_URL }),
 *     auth: { jwtSecret: process.env.JWT_SECRET! },
 *     rules,
 *   });
 *   await server.listen({ port: 4000 });
 */
export async function createSyncServer<TSchema extends Schema>(
  options: SyncServerOptions<TSchema>,
): Promise<SyncServer<TSchema>> {
  const { schema, database } = options;
  if (database?.dialect?.name !== 'postgres') {
    throw new UsageError(
      'createSyncServer(): database must be a PostgreSQL driver: postgres({ connectionString }) from syncline/postgres or pglite({ dataDir }) from syncline/pglite (SQLite is for clients)',
    );
  }
  if (typeof database.listen !== 'function') {
    throw new UsageError(`createSyncServer(): the ${database.name} driver cannot LISTEN for notifications`);
  }
  const path = options.path ?? '/sync';
  if (!path.startsWith('/'))
    throw new UsageError(`createSyncServer(): path must start with "/", got "${path}"`);
  const limits = checkLimits(options.limits, database);
  const capture = options.capture ?? 'triggers';
  if (capture !== 'triggers' && capture !== 'logical') {
    throw new UsageError(
      `createSyncServer(): capture must be 'triggers' or 'logical', got ${String(capture)}`,
    );
  }
  if (capture === 'logical' && database.name === 'pglite') {
    throw new UsageError(
      "createSyncServer(): capture: 'logical' needs a PostgreSQL server with wal_level = logical; PGlite has no logical replication: use capture: 'triggers'",
    );
  }
  if (options.monitoring?.statusPage && !options.monitoring.adminToken) {
    throw new UsageError(
      'createSyncServer(): monitoring.statusPage needs monitoring.adminToken: the page shows who is connected',
    );
  }
  const authenticate = createAuthenticator(options.auth);
  const log = new ServerLog(options.log);
  const rules = new RuleSet(schema, options.rules);

  const db = await openDatabase(schema, database);
  rules.bindDatabase(db);
  const clock = new HybridLogicalClock('server');
  let unlisten: (() => Promise<void>) | undefined;
  let hub: ChangeHub;
  let reader: ChangeLogReader;
  let consumer: LogicalConsumer | undefined;
  try {
    if (capture === 'logical') {
      const names = await installLogicalCapture(db, schema.tableList, { maxRowBytes: limits.maxRowBytes });
      consumer = new LogicalConsumer(db, schema.tableList, names, log, options.logical ?? {});
      registerLogicalCapture(db, consumer);
      consumer.start();
    } else {
      await removeLogicalCapture(db, schema.tableList);
      await installCapture(db, schema.tableList, { maxRowBytes: limits.maxRowBytes });
    }
    await seedClock(db, clock, log);
    reader = consumer ? new CaughtUpReader(db, consumer, log) : new ChangeLogReader(db);
    hub = new ChangeHub(reader, log, {
      windowChanges: limits.changeWindow,
      windowBytes: limits.changeWindowBytes,
      pageBytes: limits.logPageBytes,
    });
    await hub.start();
    const wake = () => void hub.read().catch(() => {});
    unlisten = await database.listen(CHANGES_CHANNEL, wake, () => {
      log.warn('hub.gap', 'the notification connection dropped and came back; reading the change log');
      wake();
    });
    // Changes committed between start() and LISTEN sent no notification we could hear.
    wake();
  } catch (error) {
    await unlisten?.().catch(() => {});
    await consumer?.close();
    await db.close();
    throw error;
  }
  if (!options.rules) {
    log.warn(
      'rules.missing',
      'no rules given: every authenticated user may read and write every synced table; to restrict them, export `rules` from the schema module (syncline serve) or pass rules to createSyncServer()',
    );
  }

  const pruneChangeLog = async (olderThanMs: number): Promise<{ changes: number }> => {
    const { changes, oldestCursor } = await reader.prune(new Date(Date.now() - olderThanMs));
    if (changes > 0) {
      log.info('log.pruned', `pruned ${changes} changes from the change log`, {
        changes,
        oldestCursor: String(oldestCursor),
      });
    }
    return { changes };
  };

  // Pruning runs in the background, one at a time, now and then every hour (or sooner).
  let pruningNow: Promise<unknown> | undefined;
  const pruneInBackground = () => {
    pruningNow ??= pruneChangeLog(limits.changeRetentionMs)
      .catch((error: Error) =>
        log.error('log.prune_failed', `pruning the change log failed: ${error.message}`, { error }),
      )
      .finally(() => {
        pruningNow = undefined;
      });
  };
  pruneInBackground();
  const pruning = setInterval(pruneInBackground, Math.min(PRUNE_EVERY_MS, limits.changeRetentionMs));
  pruning.unref?.();

  const connections = new Set<SyncConnection>();
  const admission = new ConnectionAdmission(limits);
  const monitoring = options.monitoring ?? {};
  const metrics = monitoring.metrics
    ? new ServerMetrics({
        connectionStates: () => [...connections].map((c) => c.state),
        lagSeconds: () => hub.lagMs / 1000,
        ticksBehind: async () => Number((await reader.keptRange()).last - hub.position),
        pool: () => database.poolStats?.(),
      })
    : undefined;
  if (metrics) {
    hub.onBatch = (batch) => {
      for (const change of batch.changes) metrics.changesRead.inc({ table: change.table });
    };
  }
  const board = monitoring.statusPage ? new StatusBoard(() => hub.lagMs / 1000) : undefined;
  const maxLagMs = monitoring.maxLagMs ?? 30_000;
  const ready = async (checks: ReadyChecks): Promise<ReadyChecks> => {
    if (closing) return { server: 'shutting down' };
    const check = async (name: string, query: SQL<unknown>) => {
      checks[name] = 'pending';
      try {
        await db.execute(query);
        checks[name] = 'ok';
      } catch (error) {
        checks[name] = (error as Error).message;
      }
    };
    await check('database', sql`SELECT 1`);
    if (checks.database === 'ok') await check('capture', sql`SELECT 1 FROM _syncline_changes LIMIT 0`);
    const lag = hub.lagMs;
    checks.changeLog = lag <= maxLagMs ? 'ok' : `${Math.round(lag / 1000)} s behind the change log`;
    return checks;
  };
  const pushes = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;
  let closeReason = 'server shutting down';
  const context: ConnectionContext = {
    schema,
    metrics,
    status: board,
    clientSchemas: options.clientSchemas ?? {},
    mutators: options.mutators,
    db,
    rules,
    clock,
    hub,
    reader,
    authenticate,
    allowTokenInUrl: options.auth?.allowTokenInUrl === true,
    log,
    messageLimits: messageLimits(limits),
    helloTimeoutMs: limits.helloTimeoutMs,
    snapshotChunkRows: limits.snapshotChunkRows,
    snapshotChunkBytes: limits.snapshotChunkBytes,
    snapshots: new SnapshotSlots(limits.maxConcurrentSnapshots),
    admission,
    sender: { maxBufferedBytes: limits.maxBufferedBytes, drainTimeoutMs: limits.drainTimeoutMs },
    maxProtocolErrors: limits.maxProtocolErrors,
    maxBacklogChanges: limits.maxBacklogChanges,
    closing: () => closing !== undefined,
    trackPush: (work) => {
      const settled = work.catch(() => {});
      pushes.add(settled);
      void settled.finally(() => pushes.delete(settled));
    },
  };

  // ws checks frame sizes itself, but only well past the limit: a message a little too big gets
  // the protocol's clear `too_large` error instead of a bare close.
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxMessageBytes * 2 + 65_536 });
  let http: Server | undefined;

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const { pathname } = new URL(request.url ?? '/', 'http://localhost');
    if (closing) return refuseUpgrade(socket, 503, 'Service Unavailable', 'the sync server is shutting down');
    if (pathname !== path) {
      return refuseUpgrade(socket, 404, 'Not Found', `no sync endpoint at ${pathname}; connect to ${path}`);
    }
    const refusal = admission.admitSocket();
    if (refusal) {
      log.warn('connection.refused', `refused a connection: ${refusal}`);
      return refuseUpgrade(socket, 503, 'Service Unavailable', refusal);
    }
    // ws calls back only when the upgrade succeeds: a failed one frees its place when it closes.
    let upgraded = false;
    socket.once('close', () => {
      if (!upgraded) admission.upgradeFailed();
    });
    wss.handleUpgrade(request, socket, head, (ws) => {
      upgraded = true;
      if (closing) {
        admission.upgradeFailed();
        ws.close(SYNC_CLOSE_CODES.goingAway, closeReason);
        return;
      }
      const connection = new SyncConnection(ws, request, context);
      connections.add(connection);
      // Counted until its work is over too: a closed connection may still be ending a snapshot.
      void connection.done.then(() => connection.idle()).then(() => connections.delete(connection));
    });
  };

  const address = (): AddressInfo => {
    const info = http?.address();
    if (!info || typeof info === 'string') {
      throw new UsageError('the sync server is not listening: call listen() first');
    }
    return info;
  };

  const shutdown = async (reason: string, timeoutMs: number): Promise<void> => {
    clearInterval(pruning);
    await pruningNow;
    const stopped = http ? new Promise<void>((resolve) => http!.close(() => resolve())) : Promise.resolve();
    await waitAtMost(Promise.allSettled([...pushes]), timeoutMs);
    const open = [...connections];
    await Promise.all(open.map((c) => c.close(SYNC_CLOSE_CODES.goingAway, reason)));
    // A closed connection may still be ending a snapshot's transaction or a push.
    await waitAtMost(Promise.allSettled(open.map((c) => c.idle())), timeoutMs);
    http?.closeAllConnections();
    await stopped;
    wss.close();
    await unlisten?.().catch(() => {});
    await hub.close();
    await consumer?.close();
    await db.close();
    log.info('server.closed', 'sync server closed');
  };

  const server: SyncServer<TSchema> = {
    db,
    async listen(listenOptions = {}) {
      if (closing) throw new UsageError('the sync server is closed; create a new one');
      if (http) throw new UsageError('the sync server is already listening');
      const endpoint = createServer(
        httpEndpoints({
          path,
          metrics,
          adminToken: monitoring.adminToken,
          readyTimeoutMs: monitoring.readyTimeoutMs ?? 2000,
          ready,
          status: board && (() => board.report([...connections].map((c) => c.status()))),
        }),
      );
      endpoint.on('upgrade', onUpgrade);
      http = endpoint;
      const host = listenOptions.host ?? '127.0.0.1';
      await new Promise<void>((resolve, reject) => {
        endpoint.once('error', reject);
        endpoint.listen(listenOptions.port ?? 0, host, () => {
          endpoint.off('error', reject);
          resolve();
        });
      }).catch((error) => {
        http = undefined;
        throw error;
      });
      log.info('server.listening', `sync server listening on ${server.url}`, { port: address().port });
    },
    get port() {
      return address().port;
    },
    get url() {
      const { address: host, port, family } = address();
      return `ws://${family === 'IPv6' ? `[${host}]` : host}:${port}${path}`;
    },
    get connections() {
      return connections.size + admission.upgradingSockets;
    },
    pruneChangeLog(pruneOptions = {}) {
      if (closing) return Promise.reject(new UsageError('the sync server is closed'));
      const olderThanMs = pruneOptions.olderThanMs ?? limits.changeRetentionMs;
      if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
        return Promise.reject(
          new UsageError(`pruneChangeLog(): olderThanMs must be 0 or more, got ${String(olderThanMs)}`),
        );
      }
      return pruneChangeLog(olderThanMs);
    },
    close(closeOptions = {}) {
      if (!closing) {
        closeReason = closeOptions.reason ?? closeReason;
        closing = shutdown(closeReason, closeOptions.timeoutMs ?? 5000);
      }
      return closing;
    },
  };
  return server;
}
