import { z } from 'zod';
import { FilterSchema } from './filter-tree.js';
import { decodeHlc } from './hlc.js';
import { NameSchema as name, VersionSchema as version } from './messages-envelope.js';
import { shown } from './messages-error.js';
import { isJsonRow, JsonRowSchema } from './messages-json.js';
import { PositionSchema } from './messages-position.js';

const hlc = z.string().refine((s) => {
  try {
    decodeHlc(s);
    return true;
  } catch {
    return false;
  }
}, 'expected an HLC stamp made by encodeHlc: 13 digits of wall ms, "-", 5 hex digits of counter, "-", a node id');

/**
 * One change to one row, the same way in both directions (a client's push, the server's
 * `changes`). `table` and the keys of `pk` and `values` are SQL names; values are encoded by the
 * value codec. `insert` carries the new row in `values`, `update` only the changed columns,
 * `delete` no `values`. `hlc` is the stamp that orders the change for last-writer-wins.
 *
 * @example
 *   const change: ChangeJson = { table: 'todos', op: 'update', pk: { id }, values: { done: true }, hlc: encodeHlc(clock.now()) };
 */
export const ChangeSchema = z
  .strictObject({
    table: name,
    op: z.enum(['insert', 'update', 'delete']),
    pk: JsonRowSchema.refine((pk) => Object.keys(pk).length > 0, 'a primary key needs at least one column'),
    values: JsonRowSchema.optional(),
    hlc,
  })
  .superRefine((change, ctx) => {
    if (change.op === 'delete' && change.values !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: 'a delete carries no values' });
    } else if (change.op !== 'delete' && change.values === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['values'],
        message: `missing (an ${change.op} carries its values)`,
      });
    } else if (change.op === 'update' && Object.keys(change.values!).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: 'an update changes at least one column' });
    }
  });
const CHANGE_OPS: ReadonlySet<unknown> = new Set(['insert', 'update', 'delete']);

function hasKeys(row: object): boolean {
  for (const _ in row) return true;
  return false;
}

/**
 * True when every item of `changes` is a change `ChangeSchema` accepts as it is, checked with
 * plain loops: a `changes` message carries up to a thousand changes, and zod copies each one it
 * validates. The changes of one write share a stamp, so a stamp is decoded once per run of them.
 * It never accepts what the schema refuses (test/sync/messages.test.ts holds it to that); on false, the
 * schema says what is wrong.
 *
 * @example
 *   const message = areWellFormedChanges(value.changes) ? value : ChangesSchema.parse(value);
 */
export function areWellFormedChanges(changes: readonly unknown[]): boolean {
  let stamp: string | undefined;
  for (const change of changes) {
    if (change === null || typeof change !== 'object' || Array.isArray(change)) return false;
    let keys = 0;
    for (const key in change) {
      if (key !== 'table' && key !== 'op' && key !== 'pk' && key !== 'values' && key !== 'hlc') return false;
      keys++;
    }
    const { table, op, pk, values, hlc: encoded } = change as Record<string, unknown>;
    if (typeof table !== 'string' || table.length < 1 || table.length > 128) return false;
    if (!CHANGE_OPS.has(op) || !isJsonRow(pk) || !hasKeys(pk)) return false;
    if (op === 'delete' ? keys !== 4 : keys !== 5 || !isJsonRow(values)) return false;
    if (op === 'update' && !hasKeys(values as object)) return false;
    if (typeof encoded !== 'string') return false;
    if (encoded !== stamp) {
      try {
        decodeHlc(encoded);
      } catch {
        return false;
      }
      stamp = encoded;
    }
  }
  return true;
}

/**
 * A parsed change (see `ChangeSchema`).
 *
 * @example
 *   for (const c of batch.changes) if (c.op === 'delete') remove(c.table, c.pk);
 */
export type ChangeJson = z.output<typeof ChangeSchema>;

/**
 * A shape a client subscribes to: its own `id` for it (unique within the hello, 1 to 64
 * characters, echoed in `snapshot`), the SQL name of a synced table, and an optional filter tree
 * (`filterToJson`). Without `where` the shape is the whole table, as far as the read rules allow.
 *
 * @example
 *   const shape: ShapeJson = { id: 'open-todos', table: 'todos', where: filterToJson(eq(todos.done, false)) };
 */
export const ShapeSchema = z.strictObject({
  id: z.string().min(1, 'cannot be empty').max(64, 'at most 64 characters'),
  table: name,
  where: FilterSchema.optional(),
});
/**
 * A parsed shape (see `ShapeSchema`); check it against the schema with `resolveShape`.
 *
 * @example
 *   const shapes: ShapeJson[] = [shapeToJson('todos', todos)];
 */
export type ShapeJson = z.output<typeof ShapeSchema>;

/**
 * Client → server, first on every connection: who the client is (`clientId`, a uuid it made and
 * keeps; lower-cased here), the schema version it was built with, its auth token, the shapes it
 * wants, and its cursor: the position of the last server change it applied, absent on a first
 * connection (then every shape starts with a snapshot).
 *
 * @example
 *   { type: 'hello', v: 1, clientId, schemaVersion: 3, token, shapes: [{ id: 'todos', table: 'todos' }], cursor: '41' }
 */
export const HelloSchema = z.strictObject({
  type: z.literal('hello'),
  v: version,
  clientId: z
    .uuid({ error: (issue) => (issue.input === undefined ? undefined : 'expected a uuid') })
    .transform((id) => id.toLowerCase()),
  schemaVersion: z.int().min(1),
  token: z.string().min(1, 'cannot be empty; leave token out instead').optional(),
  shapes: z.array(ShapeSchema).superRefine((shapes, ctx) => {
    const seen = new Set<string>();
    shapes.forEach((shape, i) => {
      if (seen.has(shape.id)) {
        ctx.addIssue({
          code: 'custom',
          path: [i, 'id'],
          message: `shape id ${shown(shape.id)} is used twice`,
        });
      }
      seen.add(shape.id);
    });
  }),
  cursor: PositionSchema.optional(),
  /**
   * The columns of the synced tables the app was built with, by table (each column's type kind).
   * With them the server serves any compatible schema version, mapping rows to what the client
   * knows; without them (older clients) only its own version.
   */
  columns: z
    .record(
      name,
      z
        .record(name, z.string().min(1).max(32))
        // PostgreSQL's own limit is 1,600 columns a table.
        .refine((columns) => Object.keys(columns).length <= 1600, 'at most 1,600 columns a table'),
    )
    .refine((tables) => Object.keys(tables).length <= 1000, 'at most 1,000 tables')
    .optional(),
  /**
   * The optional frame formats this client reads (`SNAPSHOT_COLUMNS_FORMAT`); the server sends a
   * format only to a client that lists it, and ignores names it does not know.
   */
  formats: z.array(z.string().min(1).max(32)).max(16, 'at most 16 formats').optional(),
});
/**
 * A parsed `hello` (see `HelloSchema`).
 *
 * @example
 *   if (hello.schemaVersion !== appSchema.version) refuse('schema_mismatch');
 */
export type HelloMessage = z.output<typeof HelloSchema>;

/**
 * A mutator the client ran (`defineMutators`), for the server to run again: its `name`, its
 * arguments as JSON (absent for none), the batch's stamp, and the rows the client's optimistic run
 * wrote (table and key), whose server version the ack carries so the client ends with the server's
 * outcome. `rows` counts toward `maxChangesPerBatch`.
 *
 * @example
 *   const mutation: MutationJson = { name: 'clearCompleted', args: { listId }, hlc, rows: [{ table: 'todos', pk: { id } }] };
 */
export const MutationSchema = z.strictObject({
  name: z.string().min(1).max(100),
  args: z.unknown().optional(),
  hlc,
  rows: z.array(z.strictObject({ table: name, pk: JsonRowSchema })),
});
/**
 * A parsed mutation (see `MutationSchema`).
 *
 * @example
 *   if (batch.mutation) await runMutator(batch.mutation.name, batch.mutation.args);
 */
export type MutationJson = z.output<typeof MutationSchema>;

/**
 * One client transaction: the changes it made, applied by the server in one transaction, whole or
 * not at all. `mutationId` counts a client's batches from 1 up, never reused, so the server can
 * apply a batch sent twice only once. A transaction that ran a mutator carries the `mutation`
 * instead, with no changes: the server runs the mutator itself.
 *
 * @example
 *   const batch: BatchJson = { mutationId: 7, changes: [change] };
 */
export const BatchSchema = z
  .strictObject({
    mutationId: z.int().min(1),
    changes: z.array(ChangeSchema),
    mutation: MutationSchema.optional(),
  })
  .superRefine((batch, ctx) => {
    if (batch.mutation && batch.changes.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['changes'],
        message: 'a batch with a mutation carries no changes',
      });
    } else if (!batch.mutation && batch.changes.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['changes'], message: 'a batch holds at least one change' });
    }
  });
/**
 * A parsed batch (see `BatchSchema`).
 *
 * @example
 *   if (batch.mutationId <= lastApplied) return { mutationId: batch.mutationId, status: 'applied' };
 */
export type BatchJson = z.output<typeof BatchSchema>;

/**
 * Client → server: local writes from the outbox, oldest first, as batches with increasing
 * mutation ids. Answered by one `ack`.
 *
 * @example
 *   { type: 'push', v: 1, batches: [{ mutationId: 7, changes: [change] }] }
 */
export const PushSchema = z.strictObject({
  type: z.literal('push'),
  v: version,
  batches: z
    .array(BatchSchema)
    .min(1, 'a push holds at least one batch')
    .superRefine((batches, ctx) => {
      for (let i = 1; i < batches.length; i++) {
        if (batches[i].mutationId <= batches[i - 1].mutationId) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'mutationId'],
            message: `mutation ids must increase; ${batches[i].mutationId} follows ${batches[i - 1].mutationId}`,
          });
        }
      }
    }),
});
/**
 * A parsed `push` (see `PushSchema`).
 *
 * @example
 *   for (const batch of push.batches) await applyBatch(batch);
 */
export type PushMessage = z.output<typeof PushSchema>;

/**
 * Client → server: a keep-alive the server answers with `pong` (echoing `id`). Browsers cannot
 * send WebSocket pings, so liveness is checked with messages. The server first streams every
 * change committed before the ping, so a `pong` also tells the client how far it must get to be
 * caught up.
 *
 * @example
 *   { type: 'ping', v: 1, id: '3' }
 */
export const PingSchema = z.strictObject({
  type: z.literal('ping'),
  v: version,
  id: z.string().max(64, 'at most 64 characters').optional(),
  /** The local transactions the client has not had acknowledged yet (its status page line). */
  pending: z.int().min(0).max(1_000_000_000).optional(),
});
/**
 * A parsed `ping` (see `PingSchema`).
 *
 * @example
 *   if (m.type === 'ping') send({ type: 'pong', v: PROTOCOL_VERSION });
 */
export type PingMessage = z.output<typeof PingSchema>;

/** How many rows one `fetch` may ask for. */
export const MAX_FETCH_ROWS = 1000;

/**
 * Client → server: the server's current version of some rows, answered by one `rows` message
 * (echoing `id`). A client asks when it could not apply what the server sent about a row (a change
 * its database refused, an insert that did not carry every column), so that one bad change never
 * stops its sync: it writes the server's rows instead and carries on.
 *
 * @example
 *   { type: 'fetch', v: 1, id: '4', rows: [{ table: 'todos', pk: { id: '…' } }] }
 */
export const FetchSchema = z.strictObject({
  type: z.literal('fetch'),
  v: version,
  id: z.string().max(64, 'at most 64 characters').optional(),
  rows: z
    .array(
      z.strictObject({
        table: name,
        pk: JsonRowSchema.refine(
          (pk) => Object.keys(pk).length > 0,
          'a primary key needs at least one column',
        ),
      }),
    )
    .min(1, 'a fetch asks for at least one row')
    .max(MAX_FETCH_ROWS, `at most ${MAX_FETCH_ROWS} rows per fetch`),
});
/**
 * A parsed `fetch` (see `FetchSchema`).
 *
 * @example
 *   const refs = fetch.rows.map(({ table, pk }) => rowRefOf(table, pk));
 */
export type FetchMessage = z.output<typeof FetchSchema>;

/**
 * Client → server, once signed in: one more shape for this connection, with an id it does not use
 * yet. The server sends the changes up to a position P, then the shape's `snapshot` at P, and from
 * then on changes in every shape; a shape it will not serve is answered with a non-fatal `error`
 * naming `shapeId`.
 *
 * @example
 *   { type: 'subscribe', v: 1, shape: { id: 'list-1', table: 'todos', where: { op: 'eq', column: 'list_id', value: '…' } } }
 */
export const SubscribeSchema = z.strictObject({
  type: z.literal('subscribe'),
  v: version,
  shape: ShapeSchema,
});
/**
 * A parsed `subscribe` (see `SubscribeSchema`).
 *
 * @example
 *   const shape = resolveShape(message.shape, appSchema);
 */
export type SubscribeMessage = z.output<typeof SubscribeSchema>;

/**
 * Client → server: stop sending a shape of this connection. Answered by `unsubscribed` with the
 * position after which no change comes for it (unless another shape holds the row).
 *
 * @example
 *   { type: 'unsubscribe', v: 1, shapeId: 'list-1' }
 */
export const UnsubscribeSchema = z.strictObject({
  type: z.literal('unsubscribe'),
  v: version,
  shapeId: ShapeSchema.shape.id,
});
/**
 * A parsed `unsubscribe` (see `UnsubscribeSchema`).
 *
 * @example
 *   connection.removeShape(message.shapeId);
 */
export type UnsubscribeMessage = z.output<typeof UnsubscribeSchema>;

/**
 * Any message a client sends.
 *
 * @example
 *   function handle(m: ClientMessage) { if (m.type === 'push') apply(m.batches); }
 */
export type ClientMessage =
  | HelloMessage
  | PushMessage
  | PingMessage
  | FetchMessage
  | SubscribeMessage
  | UnsubscribeMessage;
