import { z } from 'zod';
import { areWellFormedChanges, ChangeSchema, ShapeSchema } from './messages-client.js';
import { NameSchema as name, PROTOCOL_VERSION, VersionSchema as version } from './messages-envelope.js';
import { JsonRowSchema } from './messages-json.js';
import { comparePositions, isPosition, PositionSchema } from './messages-position.js';
import type { SnapshotColumnsMessage } from './messages-snapshot-columns.js';

export * from './messages-snapshot-columns.js';

const count = z.int().min(0);

/**
 * The limits the server enforces on what a client sends, announced in `welcome` so a client can
 * size its pushes to fit.
 *
 * @example
 *   const limits: MessageLimits = { ...DEFAULT_MESSAGE_LIMITS, maxMessageBytes: 4 << 20 };
 */
export const MessageLimitsSchema = z.strictObject({
  maxMessageBytes: z.int().min(1),
  maxDepth: z.int().min(1),
  maxShapes: z.int().min(0),
  maxBatches: z.int().min(1),
  maxChangesPerBatch: z.int().min(1),
});
/**
 * The limits a server enforces (see `MessageLimitsSchema`).
 *
 * @example
 *   const limits: MessageLimits = { ...DEFAULT_MESSAGE_LIMITS, maxBatches: 20 };
 */
export type MessageLimits = z.output<typeof MessageLimitsSchema>;

/**
 * Server → client, the answer to a good `hello`: the shapes are accepted and data follows. It
 * says which of the client's batches the server has already applied (`lastMutationId`, 0 for
 * none; the client drops those from its outbox and resends the rest, which covers an `ack` lost
 * with the connection) and the limits the server enforces. `hlc` is the server's clock when it answered: the client merges it, so
 * every stamp it makes afterwards is newer than every stamp the server held (the rows of a
 * snapshot carry no stamps of their own).
 *
 * @example
 *   { type: 'welcome', v: 1, lastMutationId: 6, limits: DEFAULT_MESSAGE_LIMITS, hlc: '1700000000000-00000-server' }
 */
export const WelcomeSchema = z.strictObject({
  type: z.literal('welcome'),
  v: version,
  lastMutationId: count,
  limits: MessageLimitsSchema,
  hlc: z
    .string()
    .regex(/^\d{13}-[0-9a-f]{5}-[0-9A-Za-z_.-]{1,64}$/, 'expected an HLC stamp made by encodeHlc')
    .optional(),
});
/**
 * A parsed `welcome` (see `WelcomeSchema`).
 *
 * @example
 *   outbox.dropUpTo(welcome.lastMutationId);
 */
export type WelcomeMessage = z.output<typeof WelcomeSchema>;

/**
 * Server → client: one chunk of the rows of a shape, read at change-log `position`. Chunks of one
 * snapshot count up from 0; `last` marks the final one, and `totalRows` is the row count of the
 * whole snapshot. When the last chunk has arrived, the rows of the shape are exactly these (rows
 * the client had that are missing are gone), and changes follow from `position`.
 *
 * @example
 *   { type: 'snapshot', v: 1, shapeId: 'todos', position: '41', chunk: 0, last: true, totalRows: 2, rows: [row1, row2] }
 */
export const SnapshotSchema = z.strictObject({
  type: z.literal('snapshot'),
  v: version,
  shapeId: ShapeSchema.shape.id,
  position: PositionSchema,
  chunk: count,
  last: z.boolean(),
  totalRows: count,
  rows: z.array(JsonRowSchema),
  /**
   * The shape is sent again, whole, for a shape the client holds: rows moved in or out of it
   * through another table its condition reads. The client replaces the shape's rows with these.
   */
  refresh: z.literal(true).optional(),
});
/**
 * A parsed `snapshot` chunk (see `SnapshotSchema`).
 *
 * @example
 *   if (chunk.last) await finishSnapshot(chunk.shapeId, chunk.position);
 */
export type SnapshotMessage = z.output<typeof SnapshotSchema>;

/**
 * A snapshot chunk in either form: rows as objects (`SnapshotSchema`) or by column
 * (`SnapshotColumnsSchema`, for clients that asked for it).
 *
 * @example
 *   const rows = 'rows' in chunk ? chunk.rows.length : columnChunkRows(chunk);
 */
export type SnapshotChunk = SnapshotMessage | SnapshotColumnsMessage;

/**
 * Any message a server sends, the negotiated forms included (`SnapshotColumnsMessage` goes only to
 * clients that asked for it): what `parseServerMessage` returns.
 *
 * @example
 *   const message: ServerFrame = parseServerMessage(frame);
 */
export type ServerFrame = ServerMessage | SnapshotColumnsMessage;

/**
 * Server → client: the changes in the client's shapes after position `from` up to and including
 * `to`, in commit order. `from` is the client's cursor (a different one means a gap: reconnect);
 * after applying them, in one transaction with the cursor, the cursor is `to`. `changes` may be
 * empty when only changes outside the client's shapes happened. A row that left a shape comes as
 * a `delete`.
 *
 * @example
 *   { type: 'changes', v: 1, from: '41', to: '43', changes: [change] }
 */
export const ChangesSchema = z
  .strictObject({
    type: z.literal('changes'),
    v: version,
    from: PositionSchema,
    to: PositionSchema,
    changes: z.array(ChangeSchema),
  })
  .refine((m) => comparePositions(m.from, m.to) <= 0, {
    path: ['to'],
    message: 'to comes before from',
  });
const CHANGES_KEYS: ReadonlySet<string> = new Set(['type', 'v', 'from', 'to', 'changes']);

/**
 * True when `value` is a `changes` message `ChangesSchema` accepts as it is, checked without zod
 * (see `areWellFormedChanges`): the client validates every message it receives, and a bulk write
 * arrives as a hundred messages of a thousand changes. On false, the schema says what is wrong.
 *
 * @example
 *   const message = isWellFormedChangesMessage(value) ? value : ChangesSchema.parse(value);
 */
export function isWellFormedChangesMessage(value: unknown): value is ChangesMessage {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  let keys = 0;
  for (const key in value) {
    if (!CHANGES_KEYS.has(key)) return false;
    keys++;
  }
  const { type, v, from, to, changes } = value as Record<string, unknown>;
  return (
    keys === CHANGES_KEYS.size &&
    type === 'changes' &&
    v === PROTOCOL_VERSION &&
    isPosition(from) &&
    isPosition(to) &&
    comparePositions(from, to) <= 0 &&
    Array.isArray(changes) &&
    areWellFormedChanges(changes)
  );
}

/**
 * A parsed `changes` message (see `ChangesSchema`).
 *
 * @example
 *   if (m.from !== cursor) reconnect(); else await applyAndMoveCursor(m.changes, m.to);
 */
export type ChangesMessage = z.output<typeof ChangesSchema>;

/**
 * The server's version of a row a rejected batch touched: `row` is null when the row does not
 * exist for this client (never did, was deleted, or is outside its shapes), so the client deletes
 * its copy; otherwise the client writes `row` back.
 *
 * @example
 *   { table: 'todos', pk: { id }, row: null }
 */
export const RestoredRowSchema = z.strictObject({
  table: name,
  pk: JsonRowSchema,
  row: JsonRowSchema.nullable(),
});
/**
 * A parsed restored row (see `RestoredRowSchema`).
 *
 * @example
 *   for (const r of result.rows) r.row ? upsert(r.table, r.row) : remove(r.table, r.pk);
 */
export type RestoredRowJson = z.output<typeof RestoredRowSchema>;

/**
 * The outcome of one pushed batch: `applied` (with `rows`, the server's version of the rows where
 * some of the batch's changes lost to newer stamps, and of those it deleted that the server did
 * not have, when there are such rows: no change will bring them, so the client writes them
 * back), or `rejected` with the reason (a constraint or a rule it broke) and the server's version
 * of the rows it touched, so the client can roll its own copy back to them.
 *
 * @example
 *   { mutationId: 8, status: 'rejected', reason: 'todos: write rule refused the row', rows: [] }
 */
export const AckResultSchema = z.discriminatedUnion('status', [
  z.strictObject({
    mutationId: z.int().min(1),
    status: z.literal('applied'),
    rows: z.array(RestoredRowSchema).optional(),
  }),
  z.strictObject({
    mutationId: z.int().min(1),
    status: z.literal('rejected'),
    reason: z.string().min(1, 'a rejection says why'),
    rows: z.array(RestoredRowSchema),
  }),
]);
/**
 * A parsed outcome of one batch (see `AckResultSchema`).
 *
 * @example
 *   if (result.status === 'rejected') emit('rejected', result.reason);
 */
export type AckResult = z.output<typeof AckResultSchema>;

/**
 * Server → client: the outcome of every batch of one `push`, in order. A batch already applied
 * before (sent twice) is reported `applied` again.
 *
 * @example
 *   { type: 'ack', v: 1, results: [{ mutationId: 7, status: 'applied' }] }
 */
export const AckSchema = z.strictObject({
  type: z.literal('ack'),
  v: version,
  results: z.array(AckResultSchema),
});
/**
 * A parsed `ack` (see `AckSchema`).
 *
 * @example
 *   for (const result of ack.results) outbox.settle(result);
 */
export type AckMessage = z.output<typeof AckSchema>;

/**
 * Server → client: a message was refused, or the connection cannot go on. `code` is a
 * `ProtocolErrorCode` for protocol errors, or another short code (`auth_failed`,
 * `schema_mismatch`, ...); `message` says what was wrong; when `fatal` is true the server closes
 * the connection next, and retrying unchanged will fail the same way.
 *
 * @example
 *   { type: 'error', v: 1, code: 'unknown_column', message: 'shapes[0].where.column: ...', fatal: true }
 */
export const ErrorSchema = z.strictObject({
  type: z.literal('error'),
  v: version,
  code: z.string().min(1).max(64),
  message: z.string(),
  fatal: z.boolean(),
  /** The shape a refused `subscribe` named. */
  shapeId: z.string().min(1).max(64).optional(),
});
/**
 * A parsed `error` (see `ErrorSchema`).
 *
 * @example
 *   if (error.fatal) stopRetrying(error.message);
 */
export type ErrorMessage = z.output<typeof ErrorSchema>;

/**
 * Server → client: the answer to `unsubscribe`. Changes after `position` no longer come for the
 * shape; the client may delete the rows no other shape of it holds.
 *
 * @example
 *   { type: 'unsubscribed', v: 1, shapeId: 'list-1', position: '57' }
 */
export const UnsubscribedSchema = z.strictObject({
  type: z.literal('unsubscribed'),
  v: version,
  shapeId: z.string().min(1).max(64),
  position: PositionSchema,
});
/**
 * A parsed `unsubscribed` (see `UnsubscribedSchema`).
 *
 * @example
 *   if (message.type === 'unsubscribed') await dropShape(message.shapeId);
 */
export type UnsubscribedMessage = z.output<typeof UnsubscribedSchema>;

/**
 * Server → client: the answer to `ping`, echoing its `id`. `position` is how far the server has
 * streamed changes to this connection, counting every change committed before the ping arrived:
 * once the client's cursor reaches it, the client is caught up (`caughtUp()`).
 *
 * @example
 *   { type: 'pong', v: 1, id: '3', position: '41' }
 */
export const PongSchema = z.strictObject({
  type: z.literal('pong'),
  v: version,
  id: z.string().max(64, 'at most 64 characters').optional(),
  position: PositionSchema.optional(),
});
/**
 * A parsed `pong` (see `PongSchema`).
 *
 * @example
 *   if (m.type === 'pong') lastSeen = Date.now();
 */
export type PongMessage = z.output<typeof PongSchema>;

/**
 * Any message a server sends.
 *
 * @example
 *   function handle(m: ServerMessage) { if (m.type === 'changes') applyChanges(m); }
 */
/**
 * Server → client: the answer to a `fetch`, the server's version of each row asked for, in the
 * order asked (`row` null where the row is missing or this user may not read it). Sent in order
 * with `changes`, after every change committed before it was read.
 *
 * @example
 *   { type: 'rows', v: 1, id: '4', rows: [{ table: 'todos', pk: { id: '…' }, row: { id: '…', title: 'Milk' } }] }
 */
export const RowsSchema = z.strictObject({
  type: z.literal('rows'),
  v: version,
  id: z.string().max(64, 'at most 64 characters').optional(),
  rows: z.array(RestoredRowSchema),
});
/**
 * A parsed `rows` (see `RowsSchema`).
 *
 * @example
 *   for (const { table, pk, row } of message.rows) write(table, pk, row);
 */
export type RowsMessage = z.output<typeof RowsSchema>;

export type ServerMessage =
  | RowsMessage
  | WelcomeMessage
  | SnapshotMessage
  | ChangesMessage
  | AckMessage
  | ErrorMessage
  | PongMessage
  | UnsubscribedMessage;
