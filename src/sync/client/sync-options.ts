import type { Database } from '../../database/database.js';
import { UsageError } from '../../errors.js';
import type { AnyTable } from '../../schema/table.js';
import type { SQL } from '../../sql/sql.js';
import type { AnyMutators } from '../mutators/define-mutators.js';
import { type ShapeJson, shapeToJson } from '../protocol/messages.js';
import type { BackoffOptions } from './backoff.js';
import { syncedTables } from './client-tables.js';
import type { WebSocketConstructor } from './websocket.js';

/**
 * One shape a client syncs: a synced table, optionally filtered with the expression builders
 * (`eq`, `and`, `inArray`, ...; sent as a tree, never as SQL). The filter may read another synced
 * table through a subquery (`inArray(col, db.select({ c }).from(t).where(...))`, `exists(...)`
 * correlated with the shape's table, their negations): the server runs it with that table's read
 * rule inside, and refuses one on a table the user may not read. `id` names it in the protocol;
 * it defaults to the table name, or the table name and the shape's index when a table has two
 * shapes.
 *
 * @example
 *   const shape: SyncShape = { table: todos, where: eq(todos.listId, listId) };
 *   const mine: SyncShape = { table: todos, where: exists(db.select().from(members).where(and(eq(members.listId, todos.listId), eq(members.userId, me)))) };
 */
export interface SyncShape<T extends AnyTable = AnyTable> {
  readonly table: T;
  readonly where?: SQL<unknown>;
  readonly id?: string;
}

/**
 * The options of `syncClient`.
 *
 * - `url`: the server's WebSocket URL (`ws://` or `wss://`).
 * - `token`: sent in `hello`; a function is called on every connection attempt (to refresh it),
 *   including the one right after the server closed the connection because the token expired.
 * - `shapes`: what to sync down; by default every synced table, whole.
 * - `WebSocket`: the class to connect with; default `globalThis.WebSocket`, else the `ws` package.
 * - `backoff`: delays between reconnects (exponential with full jitter, 200 ms up to 10 s).
 * - `pingIntervalMs`: keep-alive interval (default 15,000); a connection silent for two intervals
 *   is dropped and reconnected.
 * - `snapshotBatchRows`: snapshot rows written per SQL statement (default 500); fewer statements
 *   matter most on drivers where each call is costly (SQLite WASM in a worker).
 * - `mutators`: the mutators this client may run (`defineMutators`), as `sync.mutate.<name>(args)`.
 *
 * @example
 *   syncClient(db, { url: 'wss://api.example.com/sync', token: () => auth.getToken(), shapes: [{ table: lists }] });
 */
export interface SyncClientOptions<M extends AnyMutators = AnyMutators> {
  url: string;
  token?: string | (() => string | Promise<string>);
  shapes?: readonly SyncShape[];
  WebSocket?: WebSocketConstructor;
  backoff?: BackoffOptions;
  pingIntervalMs?: number;
  snapshotBatchRows?: number;
  mutators?: M;
}

/**
 * The options checked and completed: shapes in their protocol form, with the key the cursor is
 * stored under (a cursor is only valid for the shapes it was made with).
 *
 * @example
 *   const { shapes, shapesKey } = resolveSyncOptions(db, options);
 */
export interface ResolvedSyncOptions {
  readonly url: string;
  readonly token: SyncClientOptions['token'];
  readonly shapes: readonly ShapeJson[];
  readonly shapesKey: string;
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly backoff: BackoffOptions;
  readonly pingIntervalMs: number;
  readonly snapshotBatchRows: number;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new UsageError(`syncClient: ${name} must be a number above 0, got ${String(value)}`);
  }
  return value;
}

/** One shape checked against the schema, in its protocol form; `at` names it in errors. */
function resolveShape(
  db: Database,
  shape: SyncShape,
  at: string,
  defaultId: (name: string) => string,
): ShapeJson {
  const synced = syncedTables(db.schema);
  const name = shape?.table?.$name;
  const table = typeof name === 'string' ? db.schema.tableByName(name) : undefined;
  if (!table) {
    throw new UsageError(
      `${at}.table is not a table of this database's schema; use one of ${synced.map((t) => t.$name).join(', ')}`,
    );
  }
  if (table.$local) {
    throw new UsageError(`${at}.table "${name}" is a localTable, which never syncs; remove the shape`);
  }
  const id = shape.id ?? defaultId(name);
  if (typeof id !== 'string' || id.length === 0 || id.length > 64) {
    throw new UsageError(`${at}.id must be a string of 1 to 64 characters`);
  }
  return shapeToJson(id, table, shape.where);
}

function resolveShapes(db: Database, shapes: readonly SyncShape[] | undefined): ShapeJson[] {
  const synced = syncedTables(db.schema);
  const list: readonly SyncShape[] = shapes ?? synced.map((table) => ({ table }));
  if (!Array.isArray(list))
    throw new UsageError('syncClient: shapes must be an array of { table, where?, id? }');
  const counts = new Map<string, number>();
  for (const shape of list) counts.set(shape?.table?.$name, (counts.get(shape?.table?.$name) ?? 0) + 1);
  const ids = new Set<string>();
  return list.map((shape, i) => {
    const json = resolveShape(db, shape, `syncClient: shapes[${i}]`, (name) =>
      counts.get(name) === 1 ? name : `${name}-${i}`,
    );
    if (ids.has(json.id))
      throw new UsageError(`syncClient: shape id "${json.id}" is used twice; give each shape its own id`);
    ids.add(json.id);
    return json;
  });
}

/**
 * A shape of `sync.subscribe()` in its protocol form. Without an `id`, the same table and filter
 * always get the same one (so subscribing twice is one subscription): the table's name and a hash
 * of the filter.
 *
 * @example
 *   const json = resolveSubscribedShape(db, { table: todos, where: eq(todos.listId, id) });
 */
export function resolveSubscribedShape(db: Database, shape: SyncShape): ShapeJson {
  const json = resolveShape(db, shape, 'subscribe(): shape', (name) => name);
  if (shape.id !== undefined || json.where === undefined) return json;
  const text = JSON.stringify(json.where);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return { ...json, id: `${json.table.slice(0, 48)}-${(hash >>> 0).toString(16).padStart(8, '0')}` };
}

/**
 * Checks the database and options of `syncClient`, throwing `UsageError` with what to change: a
 * database that is not SQLite, a URL that is not `ws://` or `wss://`, a shape on a table outside
 * the schema or a local one, a filter a shape cannot express, duplicate shape ids, bad numbers.
 *
 * @example
 *   const resolved = resolveSyncOptions(db, { url: 'ws://localhost:4000/sync' });
 */
export function resolveSyncOptions(db: Database, options: SyncClientOptions): ResolvedSyncOptions {
  if (db?.dialect?.name !== 'sqlite') {
    throw new UsageError(
      `syncClient needs a Database opened on SQLite (the client side of sync), got one on ${db?.dialect?.name ?? 'something that is not a Database'}; the PostgreSQL side is createSyncServer() from syncline/server`,
    );
  }
  let protocol: string;
  try {
    protocol = new URL(options?.url).protocol;
  } catch {
    throw new UsageError(
      `syncClient: url must be a WebSocket URL such as ws://localhost:4000/sync, got ${String(options?.url)}`,
    );
  }
  if (protocol !== 'ws:' && protocol !== 'wss:') {
    throw new UsageError(`syncClient: url must start with ws:// or wss://, got ${options.url}`);
  }
  const token = options.token;
  if (token !== undefined && typeof token !== 'function' && (typeof token !== 'string' || token === '')) {
    throw new UsageError('syncClient: token must be a non-empty string or a function returning one');
  }
  const shapes = resolveShapes(db, options.shapes);
  const snapshotBatchRows = Math.floor(positive('snapshotBatchRows', options.snapshotBatchRows, 500));
  return {
    url: options.url,
    token,
    shapes,
    shapesKey: JSON.stringify(shapes),
    WebSocket: options.WebSocket,
    backoff: {
      initialMs: positive('backoff.initialMs', options.backoff?.initialMs, 200),
      maxMs: positive('backoff.maxMs', options.backoff?.maxMs, 10_000),
    },
    pingIntervalMs: positive('pingIntervalMs', options.pingIntervalMs, 15_000),
    snapshotBatchRows: Math.max(1, snapshotBatchRows),
  };
}
