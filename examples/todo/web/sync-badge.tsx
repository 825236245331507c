import { useSyncExternalStore } from 'react';
import { useSyncStatus } from '../../../src/react/index.js';
import { badgeStatus, type PageConnection } from './page-connection.js';

/**
 * The header's sync badge: the provider's sync client's status (`useSyncStatus()`), made
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
  return (
    <span id="sync-status" className="badge status" data-testid="sync-status" data-status={status}>
      {status}
    </span>
  );
}
