import type { SnapshotProgress } from '../sync/client/snapshot-apply.js';
import type { SyncClient } from '../sync/client/sync-client.js';

/**
 * The latest snapshot progress of one sync client, for `useSyncExternalStore`. The client only
 * emits progress (it keeps no getter), so the store listens from its creation for as long as the
 * client lives: one listener per client, however many components read it.
 */
class SyncProgressStore {
  private value: SnapshotProgress | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(client: SyncClient) {
    client.on('progress', (progress) => {
      this.value = progress;
      for (const listener of [...this.listeners]) listener();
    });
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  readonly getSnapshot = (): SnapshotProgress | undefined => this.value;
}

const stores = new WeakMap<SyncClient, SyncProgressStore>();

/** The progress store of `client`, made (and listening) on first use. */
export function syncProgressStore(client: SyncClient): SyncProgressStore {
  let store = stores.get(client);
  if (!store) stores.set(client, (store = new SyncProgressStore(client)));
  return store;
}
