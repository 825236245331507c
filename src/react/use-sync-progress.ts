import { useSyncExternalStore } from 'react';
import type { SnapshotProgress } from '../sync/client/snapshot-apply.js';
import type { SyncClient } from '../sync/client/sync-client.js';
import { syncProgressStore } from './sync-progress-store.js';
import { useSyncClientFor } from './syncline-provider.js';

/**
 * How far the sync client's initial snapshot is (`{ rows, totalRows }`, summed over its shapes),
 * re-rendering on each chunk; undefined until the first chunk arrives. Takes the provider's client
 * when none is given; throws `MissingProviderError` without either. Progress is recorded from the
 * moment the provider (or this hook) first sees the client.
 *
 * @example
 *   const progress = useSyncProgress();
 *   if (progress && progress.rows < progress.totalRows) return <progress value={progress.rows} max={progress.totalRows} />;
 */
export function useSyncProgress(client?: SyncClient): SnapshotProgress | undefined {
  const store = syncProgressStore(useSyncClientFor(client, 'useSyncProgress'));
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}
