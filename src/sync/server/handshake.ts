import type { IncomingMessage } from 'node:http';
import { entityKind, is } from '../../entity.js';
import { AuthError, SynclineError } from '../../errors.js';
import type { AnyTable } from '../../schema/table.js';
import { and } from '../../sql/expressions.js';
import type { HelloMessage, ShapeJson } from '../protocol/messages.js';
import { resolveShape, SyncMessageError } from '../protocol/messages.js';
import { tokenOf } from './auth.js';
import { ClientSchemaRefusal, type ClientSchemaView, clientSchemaView } from './client-schema.js';
import { SYNC_CLOSE_CODES } from './close-codes.js';
import type { ConnectionContext } from './connection.js';
import type { SyncUser } from './rules.js';
import { ShapeFilter } from './shape-filter.js';
import { readSnapshot, SnapshotAborted, type SnapshotShape, type SnapshotSink } from './snapshot-reader.js';

/**
 * A connection the server accepted: who the client is, which user, its shapes (each predicate
 * already ANDed with the user's read rule) and the filter for its change stream.
 *
 * @example
 *   const { clientId, user, shapes } = await shakeHands(context, hello, request);
 */
export interface Handshake {
  readonly clientId: string;
  readonly user: SyncUser;
  readonly shapes: readonly SnapshotShape[];
  readonly filter: ShapeFilter;
  /** How rows map to the client's schema, when it was built with another one (else undefined). */
  readonly view: ClientSchemaView | undefined;
}

/**
 * Why a hello was refused: `code` travels in the fatal `error` message (`auth_failed`,
 * `schema_mismatch`, `forbidden`, or a protocol code such as `unknown_table`), `closeCode` closes
 * the socket (see `SYNC_CLOSE_CODES`).
 *
 * @example
 *   catch (e) { if (e instanceof HandshakeRefused) refuse(e.code, e.message, e.closeCode); }
 */
export class HandshakeRefused extends SynclineError {
  static override readonly [entityKind]: string = 'HandshakeRefused';
  constructor(
    readonly code: string,
    message: string,
    readonly closeCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Checks a `hello` in the order docs/sync-internals.md gives: the token, then the schema (the
 * columns the client lists must fit the server's, or its version equal the server's), then each shape against the schema, ANDed with the table's read
 * rule for this user. Throws `HandshakeRefused` with a message that says what to do.
 *
 * @example
 *   const handshake = await shakeHands(context, hello, request);
 */
export async function shakeHands(
  ctx: ConnectionContext,
  hello: HelloMessage,
  request: IncomingMessage,
): Promise<Handshake> {
  const url = request.url ?? '/';
  let user: SyncUser;
  try {
    user = await ctx.authenticate({
      token: tokenOf(hello.token, request.headers, url, ctx.allowTokenInUrl),
      headers: request.headers,
      url,
      remoteAddress: request.socket.remoteAddress,
    });
  } catch (cause) {
    if (!is(cause, AuthError)) throw cause;
    throw new HandshakeRefused(
      'auth_failed',
      `authentication failed: ${cause.message}`,
      SYNC_CLOSE_CODES.authFailed,
      { cause },
    );
  }

  const view = clientView(ctx, hello);
  const shapes = hello.shapes.map((shape, i) => shapeForUser(ctx, user, shape, `shapes[${i}]`));

  for (const [i, shape] of shapes.entries()) {
    if (view && !view.has(shape.table.$name)) {
      throw new HandshakeRefused(
        'unknown_table',
        `shapes[${i}].table: "${shape.table.$name}" is not among the tables the client says it has`,
        SYNC_CLOSE_CODES.protocolError,
      );
    }
  }
  return { clientId: hello.clientId, user, shapes, filter: new ShapeFilter(ctx.db, shapes), view };
}

/**
 * How the client's schema maps to the server's: a client that lists its columns is served when
 * they fit (see `clientSchemaView`), one that does not only at the server's own version.
 */
function clientView(ctx: ConnectionContext, hello: HelloMessage): ClientSchemaView | undefined {
  const serverVersion = ctx.schema.version;
  if (hello.columns !== undefined) {
    try {
      return clientSchemaView(ctx.schema, hello.schemaVersion, hello.columns, ctx.clientSchemas);
    } catch (cause) {
      if (!(cause instanceof ClientSchemaRefusal)) throw cause;
      throw new HandshakeRefused(
        'schema_mismatch',
        `the client's schema (version ${hello.schemaVersion}) cannot be served by this server (schema version ${serverVersion}): ${cause.message}; update the app (its writes wait in its outbox)`,
        SYNC_CLOSE_CODES.schemaMismatch,
        { cause },
      );
    }
  }
  if (hello.schemaVersion !== serverVersion) {
    const fix =
      hello.schemaVersion < serverVersion
        ? 'update the app so it is built with the current schema'
        : 'deploy the new schema to the server first, or roll the app back';
    throw new HandshakeRefused(
      'schema_mismatch',
      `the client was built for schema version ${hello.schemaVersion}, the server runs schema version ${serverVersion}: ${fix}`,
      SYNC_CLOSE_CODES.schemaMismatch,
    );
  }
  return undefined;
}

/**
 * A shape from a `hello` or a `subscribe`, checked against the schema and ANDed with the table's
 * read rule for `user`; `at` names it in errors (`shapes[2]`, `shape`). The filter's subqueries
 * get their table's read rule too, so a filter cannot test rows the user may not read. Throws
 * `HandshakeRefused`: `forbidden` when the rules let the user read nothing of the table (or of a
 * subquery's), or the shape's protocol error.
 *
 * @example
 *   const shape = shapeForUser(ctx, session.user, message.shape, 'shape');
 */
export function shapeForUser(
  ctx: ConnectionContext,
  user: SyncUser,
  shape: ShapeJson,
  at: string,
): SnapshotShape {
  const readRule = (table: AnyTable) =>
    ctx.rules.canRead(table) ? ctx.rules.readFilter(table, user) : 'none';
  let resolved: ReturnType<typeof resolveShape>;
  try {
    // A subquery of the filter sees only what the user may read of its table (its read rule).
    resolved = resolveShape(shape, ctx.schema, 0, {}, at, readRule);
  } catch (cause) {
    if (!is(cause, SyncMessageError)) throw cause;
    const close = cause.code === 'forbidden' ? SYNC_CLOSE_CODES.forbidden : SYNC_CLOSE_CODES.protocolError;
    throw new HandshakeRefused(cause.code, cause.message, close, { cause });
  }
  const { table } = resolved;
  const rule = readRule(table);
  if (rule === 'none') {
    throw new HandshakeRefused(
      'forbidden',
      `${at}.table: the read rules do not let user ${JSON.stringify(user.userId)} read table "${table.$name}"; remove the shape, or give the table a read rule that admits this user`,
      SYNC_CLOSE_CODES.forbidden,
    );
  }
  return { id: resolved.id, table, where: and(resolved.where, rule) };
}

/**
 * Where a connection's change stream starts: the client's cursor when the log holds it, else the
 * position of a fresh snapshot of every shape, sent through `sink` (a first connection has no
 * cursor; a cursor ahead of the log means the server's database is not the one the client knew;
 * one older than the kept log missed changes that were pruned). Snapshots wait for one of the
 * server's snapshot slots (`limits.maxConcurrentSnapshots`), so that clients slow to read them
 * never hold every pooled connection, and their transaction may idle (waiting for the client to
 * read) twice `limits.drainTimeoutMs` before PostgreSQL ends it, a backstop for the connection's
 * own drain timeout.
 *
 * @example
 *   const cursor = await startingPosition(context, handshake, hello.cursor, sink);
 */
export async function startingPosition(
  ctx: ConnectionContext,
  handshake: Handshake,
  cursor: string | undefined,
  sink: SnapshotSink,
  /** The connection's log fields (its id, client and user). */
  fields: Record<string, unknown> = { clientId: handshake.clientId, userId: handshake.user.userId },
): Promise<bigint> {
  let reason = 'no cursor';
  if (cursor !== undefined) {
    const { oldest, last } = await ctx.reader.keptRange();
    const at = BigInt(cursor);
    if (at >= oldest && at <= last) return at;
    reason =
      at > last
        ? `cursor ${cursor} is ahead of the log (${last})`
        : `cursor ${cursor} is older than the kept change log (from ${oldest})`;
  }
  const release = await ctx.snapshots.acquire(handshake.user.userId);
  let read: { position: string; rows: number };
  try {
    // Its turn may come after the client left.
    if (sink.aborted()) throw new SnapshotAborted('the connection closed while its snapshot waited');
    const timer = ctx.metrics?.snapshots.startTimer();
    read = await readSnapshot(ctx.db, handshake.shapes, sink, {
      chunkRows: ctx.snapshotChunkRows,
      chunkBytes: ctx.snapshotChunkBytes,
      idleTimeoutMs: 2 * ctx.sender.drainTimeoutMs,
    });
    timer?.();
  } finally {
    release();
  }
  const { position, rows } = read;
  ctx.log.info('snapshot.sent', `snapshot of ${handshake.shapes.length} shapes sent`, {
    ...fields,
    rows,
    position,
    reason,
  });
  return BigInt(position);
}
