import { createContext, createElement, type ReactElement, type ReactNode, useContext, useMemo } from 'react';
import type { Database } from '../database/database.js';
import type { NoMutators } from '../sync/client/mutate-functions.js';
import type { SyncClient } from '../sync/client/sync-client.js';
import type { AnyMutators } from '../sync/mutators/define-mutators.js';
import { MissingProviderError } from './missing-provider-error.js';
import { syncProgressStore } from './sync-progress-store.js';

/** What a `SynclineProvider` hands down: the database and the sync client, each when given. */
export interface SynclineContextValue {
  readonly db: Database<any> | undefined;
  readonly sync: SyncClient | undefined;
}

const SynclineContext = createContext<SynclineContextValue>({ db: undefined, sync: undefined });

/**
 * The props of `SynclineProvider`: the database its hooks query (`useLiveQuery((db) => ...)`,
 * `useDatabase()`) and the sync client they watch (`useSyncStatus()`, `useSyncProgress()`).
 */
export interface SynclineProviderProps {
  readonly db?: Database<any>;
  readonly sync?: SyncClient;
  readonly children?: ReactNode;
}

/**
 * Makes a database and a sync client available to the hooks below it, so components need not
 * pass them around. A provider inside another one keeps what it does not set from the outer one.
 *
 * @example
 *   createRoot(el).render(
 *     <SynclineProvider db={db} sync={sync}>
 *       <App />
 *     </SynclineProvider>,
 *   );
 */
export function SynclineProvider({ db, sync, children }: SynclineProviderProps): ReactElement {
  const outer = useContext(SynclineContext);
  const value = useMemo(
    () => ({ db: db ?? outer.db, sync: sync ?? outer.sync }),
    [db, sync, outer.db, outer.sync],
  );
  // Progress is an event with no getter on the client: start recording it now, so a component
  // mounted in the middle of the snapshot shows how far it is.
  if (value.sync) syncProgressStore(value.sync);
  return createElement(SynclineContext.Provider, { value }, children);
}

/** The provider's database, or undefined outside one (for hooks that can do without it). */
export function useProvidedDatabase(): Database<any> | undefined {
  return useContext(SynclineContext).db;
}

/** The sync client given, else the provider's; throws `MissingProviderError` naming `hook` without either. */
export function useSyncClientFor(
  client: SyncClient | undefined,
  hook: string,
  instead = `pass the client: ${hook}(sync)`,
): SyncClient {
  const provided = useContext(SynclineContext).sync;
  const sync = client ?? provided;
  if (!sync) throw new MissingProviderError(`${hook}()`, 'a sync client', instead);
  return sync;
}

/**
 * The database of the nearest `SynclineProvider`. Throws `MissingProviderError` outside one.
 *
 * @example
 *   const db = useDatabase();
 *   const add = (title: string) => db.insert(todos).values({ listId, title });
 */
export function useDatabase<TDatabase extends Database<any> = Database<any>>(): TDatabase {
  const db = useProvidedDatabase();
  if (!db)
    throw new MissingProviderError('useDatabase()', 'a database', 'import the database where you use it');
  return db as TDatabase;
}

/**
 * The sync client of the nearest `SynclineProvider`. Throws `MissingProviderError` outside one.
 * Name the mutators the provided client was made with to have `sync.mutate` typed (the context
 * cannot carry the type).
 *
 * @example
 *   const sync = useSyncClient();
 *   useEffect(() => sync.on('rejected', ({ reason }) => toast(reason)), [sync]);
 *   const { mutate } = useSyncClient<typeof mutators>();
 */
export function useSyncClient<M extends AnyMutators = NoMutators>(): SyncClient<M> {
  return useSyncClientFor(undefined, 'useSyncClient', 'import the client where you use it') as SyncClient<M>;
}
