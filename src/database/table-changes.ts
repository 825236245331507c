import type { RowChanges } from '../live/row-changes.js';

/** Hears which tables a commit changed, and which rows where known. */
export type TablesChangedListener = (tables: ReadonlySet<string>, rows: RowChanges | undefined) => void;

interface Subscription {
  readonly tables: ReadonlySet<string> | undefined;
  readonly listener: TablesChangedListener;
}

/**
 * Table-change events of one Database: who listens to which tables, and telling them after a
 * commit. Listeners run synchronously in subscription order; one that throws does not stop the rest.
 */
export class TableChanges {
  private readonly subscriptions = new Set<Subscription>();

  /** Listens to changes of the given tables (all tables when undefined); returns the unsubscribe. */
  subscribe(tables: Iterable<string> | undefined, listener: TablesChangedListener): () => void {
    const subscription: Subscription = { tables: tables ? new Set(tables) : undefined, listener };
    this.subscriptions.add(subscription);
    return () => {
      this.subscriptions.delete(subscription);
    };
  }

  get size(): number {
    return this.subscriptions.size;
  }

  emit(tables: ReadonlySet<string>, rows?: RowChanges): void {
    if (tables.size === 0) return;
    for (const { tables: wanted, listener } of [...this.subscriptions]) {
      if (wanted && ![...tables].some((t) => wanted.has(t))) continue;
      try {
        listener(tables, rows);
      } catch (error) {
        // A listener's own bug must not break the commit that is being reported, nor other listeners.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  clear(): void {
    this.subscriptions.clear();
  }
}
