import { type DependencyList, useMemo, useSyncExternalStore } from 'react';
import { type LiveQueryInput, queryKey, resolveQuery } from './live-query-input.js';
import { suspenseStore } from './suspense-cache.js';
import { useProvidedDatabase } from './syncline-provider.js';

/**
 * The rows of a live query, for a component under `<Suspense>`: it suspends until the first
 * result, then returns the rows and re-renders when they change. A failed run throws its error to
 * the nearest error boundary. `query` is a query builder or `(db) => query` on the provider's
 * database, as for `useLiveQuery`; identical queries (same database, SQL and parameters) share
 * one live query. With `deps`, the query is made again only when they change.
 *
 * @example
 *   function Todos() {
 *     const rows = useSuspenseLiveQuery((db) => db.select().from(todos).orderBy(todos.title));
 *     return <ul>{rows.map((t) => <li key={t.id}>{t.title}</li>)}</ul>;
 *   }
 *   // <Suspense fallback={<p>Loading…</p>}><Todos /></Suspense>
 */
export function useSuspenseLiveQuery<T>(query: LiveQueryInput<T>, deps?: DependencyList): T {
  const db = useProvidedDatabase();
  const hook = 'useSuspenseLiveQuery';
  const made = useMemo(
    () => (deps ? resolveQuery(query, db, hook) : undefined),
    // biome-ignore lint/correctness/useExhaustiveDependencies: the query is remade on these only, as documented.
    deps ? [db, ...deps] : [undefined],
  );
  const current = made ?? resolveQuery(query, db, hook);
  const store = suspenseStore(
    current,
    queryKey(current, hook, 'pass a query builder such as db.select()...'),
  );
  const state = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  if (state.status === 'loading') throw store.suspend();
  if (state.status === 'error') throw state.error;
  return state.data as T;
}
