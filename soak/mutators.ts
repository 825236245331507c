/**
 * The soak's mutators (README "Mutators"): business logic a client runs at once on its SQLite and
 * the server runs again in the push's transaction. Their server runs read the server's rows, so
 * their outcome can differ from the client's guess (another client's items, a retitled row gone):
 * the checker then sees whether every replica ends with the server's outcome. Neither can break a
 * constraint, so they are never rejected.
 *
 * - `retitle({ id, title })`: sets one item's title, if it exists.
 * - `clearNotes({ ownerId })`: deletes the owner's items that have no note (several rows, chosen
 *   by what the database holds when it runs).
 */
import { z } from 'zod';
import { and, eq, isNull } from '../src/index.js';
import { defineMutators } from '../src/sync/client/index.js';
import type { SoakSchema } from './schema.js';

/**
 * The mutators for one schema variant.
 *
 * @example
 *   const sync = syncClient(db, { url, token, mutators: soakMutators(s) });
 *   await sync.mutate.retitle({ id: itemKey(3), title: 'x' });
 */
export function soakMutators(s: SoakSchema) {
  const items = s.items as any;
  const column = (name: string) => items.$columnBySqlName(name);
  return defineMutators({
    retitle: {
      args: z.strictObject({ id: z.uuid(), title: z.string().max(200) }),
      run: async (tx, { id, title }) => {
        await tx
          .update(items)
          .set({ title })
          .where(eq(column('id'), id));
      },
    },
    clearNotes: {
      args: z.strictObject({ ownerId: z.uuid() }),
      run: async (tx, { ownerId }) => {
        await tx.delete(items).where(and(eq(column('owner_id'), ownerId), isNull(column('note'))));
      },
    },
  });
}

/** The soak's mutators, as `soakMutators` makes them. */
export type SoakMutators = ReturnType<typeof soakMutators>;

/**
 * A mutation a plan step makes: the mutator's name and its arguments.
 *
 * @example
 *   const m: SoakMutation = { name: 'clearNotes', args: { ownerId: ownerKey(1) } };
 */
export type SoakMutation =
  | { readonly name: 'retitle'; readonly args: { id: string; title: string } }
  | { readonly name: 'clearNotes'; readonly args: { ownerId: string } };
