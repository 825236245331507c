import { asc, count, eq } from '../../../src/index.js';
import { useDatabase, useLiveQuery } from '../../../src/react/index.js';
import { type List, lists, todos } from '../schema.js';
import { AddForm } from './add-form.js';
import { EditableText } from './inline-editor.js';
import { run, type Say, useSayError } from './message.js';

interface ListNavProps {
  /** The lists, in order; undefined until the first result. */
  lists: List[] | undefined;
  selectedId: string | undefined;
  onSelect: (id: string) => void;
  user: string;
  say: Say;
}

/**
 * The side bar: every list with its count of open todos (a second live query, grouped by list),
 * click to pick, double-click to rename, × to delete; and the field that adds a list and picks it.
 *
 * @example
 *   <ListNav lists={rows} selectedId={id} onSelect={choose} user="alice" say={say} />
 */
export function ListNav({ lists: rows, selectedId, onSelect, user, say }: ListNavProps) {
  const db = useDatabase();
  const openCounts = useLiveQuery(
    (db) =>
      db
        .select({ listId: todos.listId, open: count() })
        .from(todos)
        .where(eq(todos.done, false))
        .groupBy(todos.listId),
    [],
  );
  useSayError(openCounts.error, say);
  const open = new Map(openCounts.data?.map((row) => [row.listId, Number(row.open)]));
  const add = (name: string) =>
    run(
      db
        .insert(lists)
        .values({ name, createdBy: user })
        .returning()
        .then(([list]) => onSelect(list.id)),
      say,
    );

  return (
    <>
      <ul id="lists" data-testid="lists">
        {rows?.map((list) => (
          // biome-ignore lint/a11y/useKeyWithClickEvents: a pointer shortcut, as on the page before React; the demo has no keyboard navigation.
          <li
            key={list.id}
            className={list.id === selectedId ? 'selected' : ''}
            data-list-id={list.id}
            onClick={() => onSelect(list.id)}
          >
            <EditableText
              className="list-name"
              value={list.name}
              onSave={(name) => run(db.update(lists).set({ name }).where(eq(lists.id, list.id)), say)}
            />
            <span className="open-count">{open.get(list.id) || ''}</span>
            <button
              type="button"
              className="icon list-delete"
              title="delete this list and its todos"
              onClick={(event) => {
                event.stopPropagation();
                run(db.delete(lists).where(eq(lists.id, list.id)), say);
              }}
            >
              ×
            </button>
          </li>
        ))}
      </ul>
      <AddForm id="new-list-form" inputId="new-list" placeholder="New list" maxLength={100} onAdd={add} />
    </>
  );
}

/**
 * The lists, oldest first, kept current: made once (`[]`: the query never changes).
 *
 * @example
 *   const { data, error } = useLists();
 */
export function useLists() {
  return useLiveQuery((db) => db.select().from(lists).orderBy(asc(lists.createdAt), asc(lists.id)), []);
}
