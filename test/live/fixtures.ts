import { type Database, index, integer, type LiveQuery, schema, table, text } from '../../src/index.js';

/**
 * What the live-query tests share: boards holding cards, and a table of notes that none of the
 * watched queries read. Integer ids keep every expected result literal.
 */

export const boards = table('boards', {
  id: integer().primaryKey(),
  title: text().notNull(),
});

export const cards = table(
  'cards',
  {
    id: integer().primaryKey(),
    boardId: integer('board_id').notNull(),
    title: text().notNull(),
    points: integer().notNull().default(0),
  },
  (t) => [index('cards_board_idx').on(t.boardId)],
);

export const notes = table('notes', {
  id: integer().primaryKey(),
  body: text().notNull(),
});

export const liveSchema = schema({ boards, cards, notes });

export type LiveDb = Database<typeof liveSchema>;

/** Boards 1 'alpha' and 2 'beta'; cards 1 and 2 on board 1, card 3 on board 2. */
export async function seed(db: LiveDb): Promise<LiveDb> {
  await db.insert(boards).values([
    { id: 1, title: 'alpha' },
    { id: 2, title: 'beta' },
  ]);
  await db.insert(cards).values([
    { id: 1, boardId: 1, title: 'a1', points: 1 },
    { id: 2, boardId: 1, title: 'a2', points: 2 },
    { id: 3, boardId: 2, title: 'b1', points: 3 },
  ]);
  return db;
}

/** Everything a subscriber heard, in order, and its unsubscribe. */
export interface Recording<T> {
  readonly values: T[];
  readonly errors: unknown[];
  /** Every event in order: a value, or `{ error }`. */
  readonly events: (T | { error: unknown })[];
  stop(): void;
}

/** Subscribes to `live` and records what it emits. */
export function record<T>(live: LiveQuery<T>): Recording<T> {
  const values: T[] = [];
  const errors: unknown[] = [];
  const events: (T | { error: unknown })[] = [];
  const stop = live.subscribe(
    (value) => {
      values.push(value);
      events.push(value);
    },
    (error) => {
      errors.push(error);
      events.push({ error });
    },
  );
  return { values, errors, events, stop };
}

/**
 * Watches a promise without awaiting it: `outcome` is undefined until it settles, so a test can
 * wait for it with a bound (`waitFor(() => s.outcome !== undefined)`) instead of hanging.
 */
export function settlement<T>(promise: Promise<T>): {
  readonly outcome: { value: T } | { error: unknown } | undefined;
} {
  const state: { outcome: { value: T } | { error: unknown } | undefined } = { outcome: undefined };
  promise.then(
    (value) => (state.outcome = { value }),
    (error: unknown) => (state.outcome = { error }),
  );
  return state;
}

/**
 * Errors thrown where nothing can catch them (a listener's own bug, rethrown in a microtask), taken
 * from the process while a test runs so that they can be asserted instead of failing the run.
 * `restore()` puts the test runner's handlers back.
 */
export function captureUncaught(): { readonly errors: unknown[]; restore(): void } {
  const saved = process.listeners('uncaughtException');
  const errors: unknown[] = [];
  const handler = (error: unknown) => {
    errors.push(error);
  };
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', handler);
  return {
    errors,
    restore() {
      process.off('uncaughtException', handler);
      for (const listener of saved) process.on('uncaughtException', listener);
    },
  };
}
