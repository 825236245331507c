import type { Watchable } from './live-query-input.js';
import { type QueryKey, sameQuery } from './live-query-input.js';
import { LiveQueryStore } from './live-query-store.js';

interface Entry {
  readonly key: QueryKey;
  readonly store: LiveQueryStore<unknown>;
}

/**
 * The stores of suspending live queries. A suspended component keeps no state (React throws its
 * hooks away until it mounts), so the store its retry must find lives here, by query. An entry
 * leaves once nothing holds its store; the few live at a time make a list enough.
 */
const entries: Entry[] = [];

/** The store of the query `key` names, made from `query` when there is none. */
export function suspenseStore<T>(query: Watchable<T>, key: QueryKey): LiveQueryStore<T> {
  const found = entries.find((entry) => sameQuery(entry.key, key));
  if (found) return found.store as LiveQueryStore<T>;
  const store: LiveQueryStore<T> = new LiveQueryStore(query.watch(), () =>
    // Let go between StrictMode's unmount and its second mount: look again after them.
    queueMicrotask(() => {
      const at = entries.findIndex((entry) => entry.store === store);
      if (at >= 0 && !store.held) entries.splice(at, 1);
    }),
  );
  entries.push({ key, store });
  return store;
}
