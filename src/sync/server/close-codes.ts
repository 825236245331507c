/**
 * The WebSocket close codes the sync server uses, so a client can tell "retry later" from "retrying
 * unchanged will fail the same way". A fatal `error` message with the details always comes first.
 *
 * - `protocolError` (4000): the hello was malformed or invalid, or came too late; fix the client.
 * - `authFailed` (4001): missing, expired, forged or refused token; get a new token.
 * - `forbidden` (4003): a shape names a table the read rules refuse this user.
 * - `schemaMismatch` (4004): the client was built for another schema version.
 * - `goingAway` (1001): the server is shutting down; reconnect (to another instance) later.
 * - `serverError` (1011): the server failed; reconnect, the cursor makes it safe.
 * - `tryAgainLater` (1013): the client read too slowly and fell too far behind, or the changes it
 *   was catching up on were pruned meanwhile; reconnect (it then gets what it needs, or a snapshot).
 *
 * @example
 *   socket.on('close', (code) => { if (code === SYNC_CLOSE_CODES.authFailed) refreshToken(); });
 */
export const SYNC_CLOSE_CODES = {
  protocolError: 4000,
  authFailed: 4001,
  forbidden: 4003,
  schemaMismatch: 4004,
  goingAway: 1001,
  serverError: 1011,
  tryAgainLater: 1013,
} as const;
