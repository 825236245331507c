import { useEffect, useState } from 'react';
import type { PendingWrites } from '../sync/client/pending-writes-report.js';
import type { SyncClient } from '../sync/client/sync-client.js';
import { useProvidedDatabase, useSyncClientFor } from './syncline-provider.js';

/** While writes wait, how often to look whether the server acknowledged them. */
const WHILE_PENDING_MS = 1000;

/**
 * What the sync client's outbox holds (`sync.pending()`), for a "3 changes waiting" badge:
 * undefined until first read, then read again after every local commit (through the provider's
 * database), every status change, and every second while something waits (acks). Re-renders only
 * when the counts change. Takes the provider's client when none is given.
 *
 * @example
 *   function Waiting() {
 *     const pending = usePendingWrites();
 *     return pending?.transactions ? <span>{pending.transactions} changes waiting</span> : null;
 *   }
 */
export function usePendingWrites(client?: SyncClient<any>): PendingWrites | undefined {
  const sync = useSyncClientFor(client, 'usePendingWrites');
  const db = useProvidedDatabase();
  const [pending, setPending] = useState<PendingWrites>();
  useEffect(() => {
    let alive = true;
    let shown = '';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const read = () => {
      void sync.pending().then(
        (next) => {
          if (!alive) return;
          const key = JSON.stringify(next);
          if (key !== shown) {
            shown = key;
            setPending(next);
          }
          clearTimeout(timer);
          if (next.transactions > 0) timer = setTimeout(read, WHILE_PENDING_MS);
        },
        () => {},
      );
    };
    read();
    const offStatus = sync.on('status', read);
    const offCommits = db?.onTablesChanged(undefined, read);
    return () => {
      alive = false;
      clearTimeout(timer);
      offStatus();
      offCommits?.();
    };
  }, [sync, db]);
  return pending;
}
