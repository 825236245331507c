/**
 * `syncline/server`: the sync server (Node only). `createSyncServer` opens the app's schema on
 * PostgreSQL or PGlite, captures every change, and serves clients over WebSockets; `rules` say
 * which rows each user may read and write.
 *
 * @example
 *   import { createSyncServer } from 'syncline/server';
 *   const server = await createSyncServer({ schema: appSchema, database: postgres(url), auth: { jwtSecret } });
 *   await server.listen({ port: 4000 });
 */
export {
  type AnyMutators,
  type ArgsValidator,
  defineMutators,
  MutatorArgsError,
  type MutatorContext,
  type MutatorDefinition,
  type Mutators,
} from '../mutators/define-mutators.js';
export type { AuthRequest, SyncAuth } from './auth.js';
export { CHANGES_CHANNEL, installCapture } from './capture.js';
export type { ClientSchemaOptions } from './client-schema.js';
export { SYNC_CLOSE_CODES } from './close-codes.js';
export type { SyncRules, SyncUser, TableRule, WriteChange } from './rules.js';
export type { LogEntry, LogLevel, ServerLogOptions } from './server-log.js';
export {
  createSyncServer,
  type SyncServer,
  type SyncServerLimits,
  type SyncServerOptions,
} from './sync-server.js';
