import { type SyncClient, SyncConnectionError, type SyncStatus } from '../../../src/sync/client/index.js';

/**
 * What the page knows about reaching the server beyond the sync client's own status: whether the
 * browser says it is offline, whether the last attempt to reach the server failed (a connection,
 * or a request of the page's own), and whether the page runs the sync client.
 *
 * @example
 *   const reach: Reach = { browserOffline: false, failedToReach: false, running: true };
 */
export interface Reach {
  readonly browserOffline: boolean;
  readonly failedToReach: boolean;
  readonly running: boolean;
}

/**
 * What the header's badge says, from the client's status (`useSyncStatus()`) and the page's
 * `Reach`: "offline" when the browser says so, when the last attempt to reach the server failed
 * or sync stopped for good; "online" once welcomed; "connecting" until the first attempt's answer.
 *
 * @example
 *   badgeStatus({ browserOffline: true, failedToReach: false, running: false }, 'online'); // 'offline'
 */
export function badgeStatus(reach: Reach, status: SyncStatus): SyncStatus {
  const reachable = !reach.browserOffline && !reach.failedToReach;
  if (reachable && status === 'online') return 'online';
  return reachable && reach.running ? 'connecting' : 'offline';
}

/**
 * The page's side of the sync connection, as a store for `useSyncExternalStore`: it starts and
 * stops the client on the browser's online and offline events, and `unreachable()` (a request of
 * the page's own failed) makes the connection again, so the badge tells the truth now rather than
 * after the keep-alive's timeout. The sync client knows none of this: it only sees its socket.
 *
 * @example
 *   const connection = new PageConnection(sync);
 *   connection.start((error) => console.warn(`sync stopped: ${error.message}`));
 */
export class PageConnection {
  private reach: Reach;
  private readonly listeners = new Set<() => void>();
  // Starts and stops go one after the other: a start() made while a stop() is still closing the
  // connection would be lost.
  private steps: Promise<unknown> = Promise.resolve();
  private onStopped: (error: Error) => void = () => {};
  private started = false;

  constructor(private readonly sync: SyncClient) {
    const browserOffline = !navigator.onLine;
    // Running from the first render when the browser is online, so the badge says connecting
    // (not offline) while the page waits for start(); registered before any component listens,
    // so the badge never sees the client online and the failure not yet cleared.
    this.reach = { browserOffline, failedToReach: false, running: !browserOffline };
    sync.on('status', (status) => {
      if (status === 'online') this.update({ failedToReach: false });
    });
    sync.on('error', (error) => {
      // The client is already reconnecting: no restart needed, only the badge.
      if (error instanceof SyncConnectionError) this.update({ failedToReach: true });
    });
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): Reach => this.reach;

  /**
   * Starts the sync client (unless the browser is offline) and follows the browser's online and
   * offline events from now on. `onStopped` hears a start that failed for good. Once only.
   */
  start(onStopped: (error: Error) => void): void {
    if (this.started) return;
    this.started = true;
    this.onStopped = onStopped;
    window.addEventListener('offline', () => {
      this.update({ browserOffline: true });
      this.run(false);
    });
    window.addEventListener('online', () => {
      this.update({ browserOffline: false, failedToReach: false });
      this.run(true);
    });
    if (!this.reach.browserOffline) this.run(true);
  }

  /**
   * A request of this page's own could not reach the server. A connection the client still
   * thinks is open (a half-open socket, the browser offline) is dropped and made again.
   */
  unreachable(): void {
    this.update({ failedToReach: true });
    if (this.sync.status === 'online' && !this.reach.browserOffline) {
      this.run(false);
      this.run(true);
    }
  }

  private run(on: boolean): void {
    this.update({ running: on });
    this.steps = this.steps.then(() => {
      if (!on) return this.sync.stop();
      void this.sync.start().catch((error: Error) => {
        this.update({ running: false });
        this.onStopped(error);
      });
    });
  }

  private update(change: Partial<Reach>): void {
    const next = { ...this.reach, ...change };
    if (
      next.browserOffline === this.reach.browserOffline &&
      next.failedToReach === this.reach.failedToReach &&
      next.running === this.reach.running
    ) {
      return;
    }
    this.reach = next;
    for (const listener of [...this.listeners]) listener();
  }
}
