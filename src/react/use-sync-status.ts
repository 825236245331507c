import { useCallback, useSyncExternalStore } from 'react';
import type { SyncClient } from '../sync/client/sync-client.js';
import type { SyncStatus } from '../sync/client/sync-events.js';
import { useSyncClientFor } from './syncline-provider.js';

/**
 * The sync client's status (`'connecting' | 'online' | 'offline'`), re-rendering when it changes.
 * Takes the provider's client when none is given; throws `MissingProviderError` without either.
 *
 * @example
 *   function SyncBadge() {
 *     const status = useSyncStatus();
 *     return <span className={status}>{status}</span>;
 *   }
 */
export function useSyncStatus(client?: SyncClient): SyncStatus {
  const sync = useSyncClientFor(client, 'useSyncStatus');
  const subscribe = useCallback((onChange: () => void) => sync.on('status', onChange), [sync]);
  const status = () => sync.status;
  return useSyncExternalStore(subscribe, status, status);
}
