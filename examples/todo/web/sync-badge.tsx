import { useSyncExternalStore } from 'react';
import { usePendingWrites, useSyncStatus } from '../../../src/react/index.js';
import { badgeStatus, type PageConnection } from './page-connection.js';

/**
 * The header's sync badges: how many local changes wait for the server (`usePendingWrites()`),
 * and the provider's sync client's status (`useSyncStatus()`), made
 * "offline" at once when the browser says so or a request of the page's own failed
 * (`PageConnection`), not only when the connection's keep-alive gives up.
 *
 * @example
 *   <SyncBadge connection={connection} />
 */
export function SyncBadge({ connection }: { connection: PageConnection }) {
  const clientStatus = useSyncStatus();
  const reach = useSyncExternalStore(connection.subscribe, connection.getSnapshot);
  const status = badgeStatus(reach, clientStatus);
  const pending = usePendingWrites();
  const waiting = pending?.transactions ?? 0;
  return (
    <>
      <span id="sync-status" className="badge status" data-testid="sync-status" data-status={status}>
        {status}
      </span>
      {waiting > 0 && (
        <span className="badge waiting" data-testid="pending-writes">
          {waiting === 1 ? '1 change waiting' : `${waiting} changes waiting`}
        </span>
      )}
    </>
  );
}
