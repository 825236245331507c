/**
 * `syncline/sync`: the sync client. It keeps a SQLite database (better-sqlite3 on Node, SQLite
 * WASM in a browser) in sync with a syncline sync server, offline first. This entry imports
 * nothing from Node: on Node 20, where there is no global WebSocket, the `ws` package is loaded
 * on demand (or pass `WebSocket` in the options).
 *
 * @example
 *   import { syncClient } from 'syncline/sync';
 *   const sync = syncClient(db, { url: 'ws://localhost:4000/sync', token, shapes: [{ table: todos }] });
 *   await sync.start();
 */
export {
  AuthError,
  SchemaMismatchError,
  SynclineError,
  SyncProtocolError,
  UsageError,
} from '../../errors.js';
export {
  type AnyMutators,
  type ArgsValidator,
  defineMutators,
  MutatorArgsError,
  type MutatorContext,
  type MutatorDefinition,
  type Mutators,
  type StandardSchema,
} from '../mutators/define-mutators.js';
export type { RejectedEvent, RestoredRow } from './ack-apply.js';
export type { BackoffOptions } from './backoff.js';
export { SyncConnectionError } from './connection.js';
export type { MutateFunctions, MutationResult } from './mutate-functions.js';
export type { PendingWrites } from './pending-writes-report.js';
export { RowApplyError, type RowKey } from './remote-apply.js';
export { SyncServerError } from './server-error.js';
export { ShapeSubscription, type SubscribeOptions } from './shape-subscriptions.js';
export type { SnapshotProgress } from './snapshot-apply.js';
export { SyncClient, syncClient } from './sync-client.js';
export type { SyncEvents, SyncListener, SyncStatus } from './sync-events.js';
export type { SyncClientOptions, SyncShape } from './sync-options.js';
export type { SyncStats } from './sync-stats.js';
export type { SyncSocket, WebSocketConstructor } from './websocket.js';
export { WriteTooLargeError } from './write-too-large.js';
