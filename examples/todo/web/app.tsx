import { useEffect, useState } from 'react';
import { useDatabase, useSyncClient } from '../../../src/react/index.js';
import { todos } from '../schema.js';
import { AddForm } from './add-form.js';
import { ClearCompletedButton } from './clear-completed-button.js';
import { ListNav, useLists } from './list-nav.js';
import { run, useSayError } from './message.js';
import type { PageConnection } from './page-connection.js';
import { SyncBadge } from './sync-badge.js';
import { TodoItems } from './todo-items.js';

interface AppProps {
  user: string;
  /** Where the database lives: 'OPFS' or 'memory'. */
  storage: string;
  connection: PageConnection;
}

/**
 * The todo page, under a `SynclineProvider`: the header (user, storage, sync badge), the lists,
 * and the picked list's todos. It renders from the local database at once; once mounted (its live
 * queries subscribed) it starts the sync connection.
 *
 * @example
 *   <SynclineProvider db={db} sync={sync}><App user="alice" storage="OPFS" connection={connection} /></SynclineProvider>
 */
export function App({ user, storage, connection }: AppProps) {
  const db = useDatabase();
  const sync = useSyncClient();
  const [message, say] = useState('');
  const selectedKey = `todo-selected-list:${user}`;
  const [chosen, choose] = useState(() => localStorage.getItem(selectedKey) ?? undefined);

  const { data: allLists, error } = useLists();
  useSayError(error, say);
  // Until the lists have loaded, the list picked last time shows its todos already; a list that
  // is gone (deleted here or elsewhere) gives way to the first.
  const selectedId = allLists ? (allLists.find((l) => l.id === chosen) ?? allLists[0])?.id : chosen;
  const selected = allLists?.find((l) => l.id === selectedId);
  const title = selected?.name ?? (allLists === undefined ? 'Loading…' : 'No list yet: add one');

  useEffect(() => {
    if (selectedId) localStorage.setItem(selectedKey, selectedId);
  }, [selectedKey, selectedId]);

  useEffect(
    () =>
      sync.on('rejected', ({ reason }) => say(`The server refused a change (rolled back here): ${reason}`)),
    [sync],
  );

  // Effects run children first: the live queries are subscribed by now, so the page shows what
  // its own database holds without waiting for the server.
  useEffect(() => {
    connection.start((error) => say(`Sync stopped: ${error.message}`));
    // For the end-to-end tests: the page is on screen.
    document.body.dataset.ready = 'true';
  }, [connection]);

  return (
    <>
      <header>
        <h1>syncline todo</h1>
        <span id="user" className="user" data-testid="user">
          {user}
        </span>
        <span
          id="storage"
          className="badge"
          data-testid="storage"
          title="where this page keeps its SQLite database"
        >
          {storage}
        </span>
        <SyncBadge connection={connection} />
      </header>
      <main>
        <nav>
          <h2>Lists</h2>
          <ListNav lists={allLists} selectedId={selectedId} onSelect={choose} user={user} say={say} />
        </nav>
        <section>
          <div className="list-header">
            <h2 id="list-title" data-testid="list-title">
              {title}
            </h2>
            <ClearCompletedButton list={selected} say={say} />
          </div>
          <AddForm
            id="new-todo-form"
            inputId="new-todo"
            placeholder="What needs doing?"
            maxLength={200}
            disabled={!selected}
            onAdd={(title) => selected && run(db.insert(todos).values({ listId: selected.id, title }), say)}
          />
          <ul id="todos" data-testid="todos">
            {selectedId && <TodoItems listId={selectedId} say={say} />}
          </ul>
          <p id="message" data-testid="message" role="status">
            {message}
          </p>
        </section>
      </main>
    </>
  );
}
