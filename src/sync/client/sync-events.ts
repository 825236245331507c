import type { RejectedEvent } from './ack-apply.js';
import type { SnapshotProgress } from './snapshot-apply.js';

/**
 * Where the sync client stands: `connecting` (starting, or reconnecting after a drop), `online`
 * (the server welcomed it; data flows both ways), `offline` (not started, stopped, or refused
 * for good, such as a bad token).
 *
 * @example
 *   sync.on('status', (status) => { badge.textContent = status; });
 */
export type SyncStatus = 'connecting' | 'online' | 'offline';

/**
 * The events of a sync client and what each listener receives: `status` the new status,
 * `progress` how far the initial snapshot is, `rejected` a local write the server refused (already
 * rolled back locally), `error` an Error (a `SynclineError`: `SyncProtocolError` for a bad message,
 * `AuthError` for a refused token, `SyncConnectionError` while the connection is down).
 *
 * @example
 *   const off = sync.on('rejected', ({ reason }) => alert(reason));
 */
export interface SyncEvents {
  status: SyncStatus;
  progress: SnapshotProgress;
  rejected: RejectedEvent;
  error: Error;
}

/**
 * A listener of one sync client event.
 *
 * @example
 *   const onError: SyncListener<'error'> = (error) => console.warn(error.message);
 */
export type SyncListener<E extends keyof SyncEvents> = (value: SyncEvents[E]) => void;

/**
 * A small typed event emitter (no Node `EventEmitter`: this runs in browsers). A listener that
 * throws does not stop the others nor the sync work that emitted; its error is rethrown in a
 * microtask, where the app's global error handler sees it.
 *
 * @example
 *   const events = new SyncEventEmitter();
 *   const off = events.on('status', console.log);
 *   events.emit('status', 'online');
 */
export class SyncEventEmitter {
  private readonly listeners = new Map<keyof SyncEvents, Set<(value: any) => void>>();

  on<E extends keyof SyncEvents>(event: E, listener: SyncListener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  emit<E extends keyof SyncEvents>(event: E, value: SyncEvents[E]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(value);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}
