/**
 * `syncline/react`: React hooks for live queries and sync status. `SynclineProvider` hands a
 * database and a sync client down the tree; `useLiveQuery` and `useSuspenseLiveQuery` keep a
 * component's rows current; `useSyncStatus` and `useSyncProgress` follow the sync client. React
 * (18 or later) is an optional peer dependency; this entry imports nothing from Node.
 *
 * @example
 *   import { SynclineProvider, useLiveQuery, useSyncStatus } from 'syncline/react';
 *   const { data } = useLiveQuery((db) => db.select().from(todos));
 */
export type { LiveQueryInput, Watchable } from './live-query-input.js';
export type { LiveQueryState, LiveQueryStatus } from './live-query-store.js';
export { MissingProviderError } from './missing-provider-error.js';
export {
  SynclineProvider,
  type SynclineProviderProps,
  useDatabase,
  useSyncClient,
} from './syncline-provider.js';
export { useLiveQuery } from './use-live-query.js';
export { usePendingWrites } from './use-pending-writes.js';
export { useSuspenseLiveQuery } from './use-suspense-live-query.js';
export { useSyncProgress } from './use-sync-progress.js';
export { useSyncStatus } from './use-sync-status.js';
