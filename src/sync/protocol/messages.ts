import type { z } from 'zod';
import { MAX_SERVER_MESSAGE_BYTES } from './message-size.js';
import {
  type ClientMessage,
  FetchSchema,
  HelloSchema,
  PingSchema,
  PushSchema,
  SubscribeSchema,
  UnsubscribeSchema,
} from './messages-client.js';
import { readEnvelope } from './messages-envelope.js';
import { formatIssues, formatPath, SyncMessageError } from './messages-error.js';
import { readJsonMessage } from './messages-json.js';
import {
  AckSchema,
  ChangesSchema,
  claimsSnapshotColumns,
  ErrorSchema,
  isWellFormedChangesMessage,
  isWellFormedSnapshotColumns,
  type MessageLimits,
  PongSchema,
  RowsSchema,
  type ServerFrame,
  type ServerMessage,
  SnapshotColumnsSchema,
  SnapshotSchema,
  UnsubscribedSchema,
  WelcomeSchema,
} from './messages-server.js';

// One import for everything about messages: the schemas and types live in small files by side.
export * from './messages-client.js';
export { NameSchema, PROTOCOL_VERSION, VersionSchema } from './messages-envelope.js';
export { type ProtocolErrorCode, SyncMessageError } from './messages-error.js';
export * from './messages-position.js';
export * from './messages-server.js';
export * from './messages-shape.js';

const CLIENT_SCHEMAS: Record<ClientMessage['type'], z.ZodType<ClientMessage>> = {
  hello: HelloSchema,
  push: PushSchema,
  ping: PingSchema,
  fetch: FetchSchema,
  subscribe: SubscribeSchema,
  unsubscribe: UnsubscribeSchema,
};

const SERVER_SCHEMAS: Record<ServerMessage['type'], z.ZodType<ServerMessage>> = {
  welcome: WelcomeSchema,
  snapshot: SnapshotSchema,
  changes: ChangesSchema,
  ack: AckSchema,
  error: ErrorSchema,
  pong: PongSchema,
  rows: RowsSchema,
  unsubscribed: UnsubscribedSchema,
};

/**
 * What `parseClientMessage` allows when given no limits: 1 MiB per message, 64 levels of nesting,
 * 64 shapes, 1,000 batches per push, 10,000 changes per batch. A server passes its own.
 *
 * @example
 *   parseClientMessage(raw, { ...DEFAULT_MESSAGE_LIMITS, maxShapes: 16 });
 */
export const DEFAULT_MESSAGE_LIMITS: MessageLimits = {
  maxMessageBytes: 1 << 20,
  maxDepth: 64,
  maxShapes: 64,
  maxBatches: 1_000,
  maxChangesPerBatch: 10_000,
};

function tooMany(what: string, n: number, max: number, limit: string, path: string): SyncMessageError {
  return new SyncMessageError('too_large', `${path}: ${n} ${what}, over the limit of ${max} (${limit})`, {
    path,
  });
}

/** Count limits, checked before the schema so a huge list is refused without validating each item. */
function checkCounts(type: string, value: Record<string, unknown>, limits: MessageLimits): void {
  if (type === 'hello' && Array.isArray(value.shapes) && value.shapes.length > limits.maxShapes) {
    throw tooMany('shapes', value.shapes.length, limits.maxShapes, 'maxShapes', 'shapes');
  }
  if (type !== 'push' || !Array.isArray(value.batches)) return;
  if (value.batches.length > limits.maxBatches) {
    throw tooMany('batches', value.batches.length, limits.maxBatches, 'maxBatches', 'batches');
  }
  value.batches.forEach((batch: unknown, i) => {
    const changes = (batch as { changes?: unknown } | null)?.changes;
    if (Array.isArray(changes) && changes.length > limits.maxChangesPerBatch) {
      throw tooMany(
        'changes',
        changes.length,
        limits.maxChangesPerBatch,
        'maxChangesPerBatch',
        `batches[${i}].changes`,
      );
    }
    const rows = (batch as { mutation?: { rows?: unknown } } | null)?.mutation?.rows;
    if (Array.isArray(rows) && rows.length > limits.maxChangesPerBatch) {
      throw tooMany(
        'rows',
        rows.length,
        limits.maxChangesPerBatch,
        'maxChangesPerBatch',
        `batches[${i}].mutation.rows`,
      );
    }
  });
}

function validate<T>(type: string, schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { issues } = result.error;
  throw new SyncMessageError('invalid_message', `invalid ${type} message: ${formatIssues(issues)}`, {
    path: formatPath(issues[0]?.path ?? []),
  });
}

/**
 * Reads one message a client sent (a WebSocket frame: text, or UTF-8 bytes) and returns it typed,
 * or throws `SyncMessageError` (a `SyncProtocolError`) with a `code` and a message saying exactly
 * what was wrong: `too_large` (over a limit; checked before parsing), `malformed_json`,
 * `version_mismatch`, `unknown_type`, or `invalid_message` (with the path of each bad field).
 * Shape filters are checked for structure here; their columns are checked by `filterFromJson`.
 *
 * @example
 *   socket.on('message', (frame) => {
 *     const message = parseClientMessage(frame, server.limits);
 *     if (message.type === 'push') await applyPush(message);
 *   });
 */
export function parseClientMessage(
  raw: string | Uint8Array,
  limits: Partial<MessageLimits> = {},
): ClientMessage {
  const all = { ...DEFAULT_MESSAGE_LIMITS, ...limits };
  const value = readJsonMessage(raw, all);
  const { type, schema } = readEnvelope(value, CLIENT_SCHEMAS, 'client', SERVER_SCHEMAS);
  checkCounts(type, value as Record<string, unknown>, all);
  return validate(type, schema, value);
}

/**
 * Reads one message the server sent and returns it typed, or throws `SyncMessageError` like
 * `parseClientMessage`. Limits are the client's own: by default 64 MiB and 64 levels of nesting,
 * as snapshot chunks can be large.
 *
 * @example
 *   ws.onmessage = (event) => handle(parseServerMessage(event.data));
 */
export function parseServerMessage(
  raw: string | Uint8Array,
  limits: { maxMessageBytes?: number; maxDepth?: number } = {},
): ServerMessage {
  return readServerMessage(raw, limits, false) as ServerMessage;
}

/**
 * `parseServerMessage` for a client that listed optional formats in its hello: it also reads the
 * negotiated forms (a snapshot chunk by column, `SnapshotColumnsSchema`), validated as strictly.
 *
 * @example
 *   ws.onmessage = (event) => handle(parseServerFrame(event.data));
 */
export function parseServerFrame(
  raw: string | Uint8Array,
  limits: { maxMessageBytes?: number; maxDepth?: number } = {},
): ServerFrame {
  return readServerMessage(raw, limits, true);
}

function readServerMessage(
  raw: string | Uint8Array,
  limits: { maxMessageBytes?: number; maxDepth?: number },
  negotiated: boolean,
): ServerFrame {
  const value = readJsonMessage(raw, {
    maxMessageBytes: limits.maxMessageBytes ?? MAX_SERVER_MESSAGE_BYTES,
    maxDepth: limits.maxDepth ?? DEFAULT_MESSAGE_LIMITS.maxDepth,
  });
  const { type, schema } = readEnvelope(value, SERVER_SCHEMAS, 'server', CLIENT_SCHEMAS);
  // The schema would copy every change of a message: a well-formed one is taken as it is.
  if (type === 'changes' && isWellFormedChangesMessage(value)) return value;
  if (negotiated && type === 'snapshot' && claimsSnapshotColumns(value)) {
    return isWellFormedSnapshotColumns(value) ? value : validate(type, SnapshotColumnsSchema, value);
  }
  return validate(type, schema, value);
}
