import { asc, eq } from '../../../src/index.js';
import { useDatabase, useLiveQuery } from '../../../src/react/index.js';
import { todos } from '../schema.js';
import { EditableText } from './inline-editor.js';
import { run, type Say, useSayError } from './message.js';

/**
 * The todos of one list, oldest first, as `<li>` rows: tick to mark done, double-click to rename,
 * × to delete. The live query is made again when `listId` changes (its deps), and closed on unmount.
 *
 * @example
 *   <ul id="todos">{listId && <TodoItems listId={listId} say={say} />}</ul>
 */
export function TodoItems({ listId, say }: { listId: string; say: Say }) {
  const db = useDatabase();
  const { data, error } = useLiveQuery(
    (db) =>
      db.select().from(todos).where(eq(todos.listId, listId)).orderBy(asc(todos.createdAt), asc(todos.id)),
    [listId],
  );
  useSayError(error, say);
  return data?.map((todo) => (
    <li key={todo.id} className={todo.done ? 'done' : ''} data-todo-id={todo.id}>
      <input
        type="checkbox"
        className="todo-done"
        checked={todo.done}
        onChange={() => run(db.update(todos).set({ done: !todo.done }).where(eq(todos.id, todo.id)), say)}
      />
      <EditableText
        className="todo-title"
        value={todo.title}
        onSave={(title) => run(db.update(todos).set({ title }).where(eq(todos.id, todo.id)), say)}
      />
      <button
        type="button"
        className="icon todo-delete"
        title="delete"
        onClick={() => run(db.delete(todos).where(eq(todos.id, todo.id)), say)}
      >
        ×
      </button>
    </li>
  ));
}
