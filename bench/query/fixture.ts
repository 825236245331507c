/**
 * The data every contender works on: lists owned by users, todos in lists, and a batch of new todos
 * to insert. Everything is generated once per run, so every library sees the same ids and rows.
 */
import { randomUUID } from 'node:crypto';

/** A todo as the app holds it (the shape every library is handed). */
export interface TodoRow {
  id: string;
  listId: string;
  title: string;
  position: number;
  done: boolean;
  updatedAt: Date;
}

export interface ListRow {
  id: string;
  name: string;
  ownerId: string;
}

export interface Fixture {
  readonly lists: readonly ListRow[];
  readonly todos: readonly TodoRow[];
  /** Ids of seeded todos, in a shuffled order, for point selects. */
  readonly todoIds: readonly string[];
  /** Owners: each owns 10 lists of 10 todos, so the join sorts 100 rows and returns 50. */
  readonly owners: readonly string[];
  /** 10,000 fresh todos for the bulk insert. */
  readonly newTodos: readonly TodoRow[];
}

/** Rows the select cases read, and rows the insert case writes. */
export const SEEDED_TODOS = 10_000;
export const INSERTED_TODOS = 10_000;
export const JOIN_LIMIT = 50;

/** A small deterministic generator, so every run seeds the same shape of data. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function makeTodos(count: number, lists: readonly ListRow[], random: () => number): TodoRow[] {
  const start = Date.UTC(2025, 0, 1);
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    listId: lists[i % lists.length]!.id,
    title: `Todo ${i}: ${'buy milk and bread '.repeat(1 + (i % 3))}`.trim(),
    position: i,
    done: i % 3 === 0,
    updatedAt: new Date(start + Math.floor(random() * 365 * 24 * 3600 * 1000)),
  }));
}

export function createFixture(): Fixture {
  const random = generator(42);
  const owners = Array.from({ length: 100 }, (_, i) => `user-${String(i).padStart(3, '0')}`);
  const lists = Array.from({ length: 1_000 }, (_, i) => ({
    id: randomUUID(),
    name: `List ${i}`,
    ownerId: owners[i % owners.length]!,
  }));
  const todos = makeTodos(SEEDED_TODOS, lists, random);
  const todoIds = todos.map((t) => t.id);
  for (let i = todoIds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [todoIds[i], todoIds[j]] = [todoIds[j]!, todoIds[i]!];
  }
  return { lists, todos, todoIds, owners, newTodos: makeTodos(INSERTED_TODOS, lists, random) };
}

/** How many rows of `columns` values fit in one statement: SQLite binds at most 32,766 parameters, PostgreSQL 65,535. */
export function rowsPerStatement(dialect: 'sqlite' | 'postgres', columns: number): number {
  return Math.floor((dialect === 'sqlite' ? 32_766 : 65_535) / columns);
}

/** Splits rows into consecutive chunks of at most `size`. */
export function chunks<T>(rows: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/**
 * What each library implements for one dialect. Selects and inserts take the app's values; what a
 * method resolves to is checked once before timing, then ignored.
 */
export interface Contender {
  /** The todo with this id, through a statement prepared once. */
  selectPrepared(id: string): unknown;
  /** The same query built (and, where the library does so, compiled) on every call. */
  selectFresh(id: string): unknown;
  /** All rows in one transaction, into the empty `inserted_todos` table. */
  insertAll(rows: readonly TodoRow[]): unknown;
  /** The owner's 50 most recently updated todos with their list names, through a prepared statement. */
  recentForOwner(owner: string): unknown;
  close(): Promise<void>;
}
