import { entityKind } from '../../entity.js';
import { AuthError, SchemaMismatchError, type SynclineError, SyncProtocolError } from '../../errors.js';
import type { ErrorMessage } from '../protocol/messages.js';

/**
 * An `error` message from the sync server, as an error: `code` is the server's short code
 * (`invalid_message`, `forbidden`, `server_error`, ...) and `fatal` whether the server closed the
 * connection after it. Refused tokens and schema versions come as `AuthError` and
 * `SchemaMismatchError` instead.
 *
 * @example
 *   sync.on('error', (e) => { if (e instanceof SyncServerError && e.code === 'forbidden') ... });
 */
export class SyncServerError extends SyncProtocolError {
  static override readonly [entityKind]: string = 'SyncServerError';
  readonly code: string;
  readonly fatal: boolean;
  constructor(code: string, message: string, fatal: boolean) {
    super(message);
    this.code = code;
    this.fatal = fatal;
  }
}

/**
 * Fatal codes after which the same connection attempt can succeed later: retry them. A token that
 * expired on an open connection is replaced by the next attempt (the `token` function is called
 * on each); a user or server at its connection limit has room later; too many refused messages
 * come from a client bug that a fresh connection may not hit again.
 */
const RETRYABLE = new Set([
  'server_error',
  'hello_timeout',
  'going_away',
  'try_again_later',
  'token_expired',
  'too_many_connections',
  'too_many_errors',
]);

/**
 * The fatal `error` code the server sends before closing a connection whose token expired.
 *
 * @example
 *   if (message.code === TOKEN_EXPIRED) reconnectWithNewToken();
 */
export const TOKEN_EXPIRED = 'token_expired';

/**
 * True when a fatal server error means retrying unchanged would fail the same way (a bad token,
 * another schema version, a shape the rules refuse), so the client stops instead of retrying.
 *
 * @example
 *   if (stopsClient(message)) await sync.stop();
 */
export function stopsClient(message: ErrorMessage): boolean {
  return message.fatal && !RETRYABLE.has(message.code);
}

/**
 * The error to report for a server `error` message, with what to do.
 *
 * @example
 *   emit('error', serverError(message));
 */
export function serverError(message: ErrorMessage): SynclineError {
  if (message.code === 'auth_failed') {
    return new AuthError(
      `the sync server refused the token: ${message.message}; give syncClient a valid token (or a token function that returns a fresh one) and start it again`,
    );
  }
  if (message.code === 'schema_mismatch') {
    return new SchemaMismatchError(`the sync server refused this client: ${message.message}`);
  }
  const what = message.fatal ? 'closed the connection' : 'refused a message';
  return new SyncServerError(
    message.code,
    `the sync server ${what} (${message.code}): ${message.message}`,
    message.fatal,
  );
}
