/**
 * The WebSocket close codes the sync server uses, so a client can tell "retry later" from "retrying
 * unchanged will fail the same way". A fatal `error` message with the details comes first, except
 * when the socket's send buffer is full (then only the close reason says why).
 *
 * - `protocolError` (4000): the hello was malformed or invalid, or came too late; fix the client.
 * - `authFailed` (4001): missing, expired, forged or refused token; get a new token.
 * - `tokenExpired` (4002): the token expired while the connection was open; the client gets a new
 *   one (its `token` function) and reconnects at once, losing nothing (unacknowledged pushes are
 *   sent again).
 * - `forbidden` (4003): a shape names a table the read rules refuse this user.
 * - `schemaMismatch` (4004): the client was built for another schema version.
 * - `tooManyConnections` (4029): the user has `limits.maxConnectionsPerUser` connections open, or
 *   the server `limits.maxConnections`; reconnect later.
 * - `goingAway` (1001): the server is shutting down; reconnect (to another instance) later.
 * - `policyViolation` (1008): the client sent `limits.maxProtocolErrors` invalid messages, or more
 *   requests than the server queues (one push, a few pings); fix the client.
 * - `serverError` (1011): the server failed; reconnect, the cursor makes it safe.
 * - `tryAgainLater` (1013): the client read too slowly (fell too far behind, left more than
 *   `limits.maxBufferedBytes` unread, or did not read for `limits.drainTimeoutMs`), or the changes
 *   it was catching up on were pruned meanwhile; reconnect (it then gets what it needs, or a
 *   snapshot).
 *
 * @example
 *   socket.on('close', (code) => { if (code === SYNC_CLOSE_CODES.authFailed) refreshToken(); });
 */
export const SYNC_CLOSE_CODES = {
  protocolError: 4000,
  authFailed: 4001,
  tokenExpired: 4002,
  forbidden: 4003,
  schemaMismatch: 4004,
  tooManyConnections: 4029,
  goingAway: 1001,
  policyViolation: 1008,
  serverError: 1011,
  tryAgainLater: 1013,
} as const;
