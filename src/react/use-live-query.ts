import { type DependencyList, useMemo, useRef, useSyncExternalStore } from 'react';
import { type LiveQueryInput, type QueryKey, queryKey, resolveQuery, sameQuery } from './live-query-input.js';
import { type LiveQueryState, LiveQueryStore } from './live-query-store.js';
import { useProvidedDatabase } from './syncline-provider.js';

/** The same key object for as long as the query stays the same, so it can be a `useMemo` dependency. */
function useStableKey(key: QueryKey | undefined): QueryKey | undefined {
  const last = useRef(key);
  // Writing a ref during render is safe here: a render React throws away leaves at worst a key
  // that makes the next render build a store again, and a store does nothing until subscribed.
  if (key !== undefined && (last.current === undefined || !sameQuery(last.current, key))) last.current = key;
  return key === undefined ? undefined : last.current;
}

/**
 * The rows of a live query, kept current: `{ data, error, status }`, re-rendering only when the
 * result changes. `query` is a query builder (`db.select().from(todos).where(...)`, typed rows
 * follow from it) or `(db) => query` on the database of the nearest `SynclineProvider`.
 *
 * Without `deps` the live query is remade when the query's SQL or parameters change (each render
 * may build a new query object); with `deps` it is remade when they change, as with `useMemo`
 * (a query without `toSQL()` needs them). The old live query is unsubscribed then, and on
 * unmount. While the first result of a new query loads, `data` is undefined.
 *
 * @example
 *   function OpenTodos({ listId }: { listId: string }) {
 *     const { data, error, status } = useLiveQuery((db) =>
 *       db.select().from(todos).where(and(eq(todos.listId, listId), eq(todos.done, false))),
 *     );
 *     if (status === 'loading') return <p>Loading…</p>;
 *     if (error) return <p>{String(error)}</p>;
 *     return <ul>{data!.map((t) => <li key={t.id}>{t.title}</li>)}</ul>;
 *   }
 */
export function useLiveQuery<T>(query: LiveQueryInput<T>, deps?: DependencyList): LiveQueryState<T> {
  const db = useProvidedDatabase();
  const hook = 'useLiveQuery';
  // Without deps the query is made on every render, to compare its SQL with the last one's.
  const current = deps ? undefined : resolveQuery(query, db, hook);
  const key = useStableKey(
    current &&
      queryKey(current, hook, 'pass deps saying when to make it again: useLiveQuery(query, [listId])'),
  );
  const store = useMemo(
    () => new LiveQueryStore((current ?? resolveQuery(query, db, hook)).watch()),
    // biome-ignore lint/correctness/useExhaustiveDependencies: the query is remade on these only, as documented.
    deps ? [db, ...deps] : [db, key],
  );
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}
