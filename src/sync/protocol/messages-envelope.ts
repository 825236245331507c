import { z } from 'zod';
import { SyncMessageError, shown } from './messages-error.js';

/**
 * The version of the sync protocol this build speaks. Every message carries it as `v`; a message
 * with another version is refused with `version_mismatch`, so a client and a server of
 * incompatible builds fail loudly instead of misreading each other.
 *
 * @example
 *   socket.send(JSON.stringify({ type: 'ping', v: PROTOCOL_VERSION }));
 */
export const PROTOCOL_VERSION = 1;

/**
 * The `v` field of every message: exactly `PROTOCOL_VERSION`.
 *
 * @example
 *   z.strictObject({ type: z.literal('ping'), v: VersionSchema });
 */
export const VersionSchema = z.literal(PROTOCOL_VERSION);

/**
 * A table name or other short identifier in a message: 1 to 128 characters.
 *
 * @example
 *   z.strictObject({ table: NameSchema });
 */
export const NameSchema = z.string().min(1, 'cannot be empty').max(128, 'at most 128 characters');

/**
 * Checks what every message shares before its own schema is applied: a JSON object, a protocol
 * version `v` equal to `PROTOCOL_VERSION` (else `version_mismatch`, checked first, as another
 * version may have other types), and a `type` found in `schemas` (else `unknown_type`, saying so
 * when the type is one the other side receives). Returns the type and its schema.
 *
 * @example
 *   const { type, schema } = readEnvelope(JSON.parse(raw), { ping: PingSchema }, 'client', {});
 */
export function readEnvelope<T>(
  value: unknown,
  schemas: Record<string, z.ZodType<T>>,
  side: 'client' | 'server',
  other: Record<string, unknown>,
): { type: string; schema: z.ZodType<T> } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SyncMessageError(
      'invalid_message',
      `a message must be a JSON object with "type" and "v", got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`}`,
    );
  }
  const { v, type } = value as { v?: unknown; type?: unknown };
  if (v === undefined) {
    throw new SyncMessageError('invalid_message', 'v: missing (the protocol version, a number)', {
      path: 'v',
    });
  }
  if (typeof v !== 'number') {
    throw new SyncMessageError(
      'invalid_message',
      `v: expected the protocol version as a number, got ${shown(v)}`,
      {
        path: 'v',
      },
    );
  }
  if (v !== PROTOCOL_VERSION) {
    const sender = side;
    const receiver = side === 'client' ? 'server' : 'client';
    throw new SyncMessageError(
      'version_mismatch',
      `protocol version ${shown(v)} is not supported: this ${receiver} speaks version ${PROTOCOL_VERSION}; update the ${v < PROTOCOL_VERSION ? sender : receiver} so both speak the same version`,
      { path: 'v' },
    );
  }
  if (typeof type !== 'string') {
    throw new SyncMessageError(
      'invalid_message',
      type === undefined ? 'type: missing (the message type)' : `type: expected a string, got ${shown(type)}`,
      { path: 'type' },
    );
  }
  const schema = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
  if (!schema) {
    const known = Object.keys(schemas).join(', ');
    const hint = Object.hasOwn(other, type)
      ? ` (${shown(type)} is a message the ${side === 'client' ? 'server' : 'client'} sends, not one it receives)`
      : '';
    throw new SyncMessageError(
      'unknown_type',
      `unknown ${side} message type ${shown(type)}${hint}; expected one of ${known}`,
      { path: 'type' },
    );
  }
  return { type, schema };
}
