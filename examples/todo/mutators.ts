import { z } from 'zod';
import { and, eq } from '../../src/index.js';
import { defineMutators } from '../../src/sync/client/index.js';
import { todos } from './schema.js';

/**
 * The todo app's business logic, shared by the page and the server (README "Mutators"): the page
 * runs a mutator at once on its SQLite, offline too, and the server runs it again when the push
 * arrives, so what the server's database holds is what every page ends with.
 *
 * - `clearCompleted({ listId })`: deletes the done todos of one list (the shown one).
 *
 * @example
 *   await sync.mutate.clearCompleted({ listId: list.id });
 */
export const todoMutators = defineMutators({
  clearCompleted: {
    args: z.object({ listId: z.uuid() }),
    run: async (tx, { listId }) => {
      await tx.delete(todos).where(and(eq(todos.listId, listId), eq(todos.done, true)));
    },
  },
});
