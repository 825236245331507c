import { useEffect } from 'react';

/**
 * Puts a line on the page's message line (`#message`): what the last action said.
 *
 * @example
 *   say('The server cleared 2 completed todos of Chores.');
 */
export type Say = (text: string) => void;

/**
 * Runs a local write, saying its error should it fail (the page has no other place for it).
 *
 * @example
 *   run(db.delete(todos).where(eq(todos.id, id)), say);
 */
export function run(work: PromiseLike<unknown>, say: Say): void {
  Promise.resolve(work).catch((error: Error) => say(`Error: ${error.message}`));
}

/**
 * Says a live query's error when one comes (`useLiveQuery(...).error`); the rows shown before it
 * stay, and the live query recovers on the next change.
 *
 * @example
 *   const { data, error } = useLiveQuery((db) => db.select().from(lists), []);
 *   useSayError(error, say);
 */
export function useSayError(error: unknown, say: Say): void {
  useEffect(() => {
    if (error) say(`Error: ${(error as Error).message}`);
  }, [error, say]);
}
