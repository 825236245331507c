import { useSyncClient } from '../../../src/react/index.js';
import type { todoMutators } from '../mutators.js';
import type { List } from '../schema.js';
import type { Say } from './message.js';

/**
 * "Clear completed": the `clearCompleted` mutator (mutators.ts) on the shown list. It clears the
 * list's done todos here at once, offline too; the server runs it again when the push arrives,
 * and every page ends with what the server kept.
 *
 * @example
 *   <ClearCompletedButton list={selected} say={say} />
 */
export function ClearCompletedButton({ list, say }: { list: List | undefined; say: Say }) {
  const sync = useSyncClient<typeof todoMutators>();
  const clear = async (list: List) => {
    try {
      await sync.mutate.clearCompleted({ listId: list.id });
      say(`Cleared the completed todos of ${list.name}.`);
    } catch (error) {
      say(`Could not clear the completed todos: ${(error as Error).message}`);
    }
  };
  return (
    <button
      id="clear-completed"
      type="button"
      title="clears this list's done todos: here at once, then on the server and every page"
      disabled={!list}
      onClick={() => list && void clear(list)}
    >
      Clear completed
    </button>
  );
}
