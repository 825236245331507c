import type { Database } from '../database/database.js';
import { UsageError } from '../errors.js';
import type { LiveQuery } from '../live/live-query.js';
import { resultsEqual } from '../live/result-equality.js';
import { MissingProviderError } from './missing-provider-error.js';

/**
 * Anything that makes a live query: a select builder (`db.select().from(todos).where(...)`) or an
 * object of your own with a `watch()`.
 */
export interface Watchable<T> {
  watch(): LiveQuery<T>;
}

/**
 * What the live query hooks take: a query, or a function that makes one from the provider's
 * database (`(db) => db.select().from(todos)`), so a component needs no database of its own.
 *
 * @example
 *   const input: LiveQueryInput<Todo[]> = (db) => db.select().from(todos);
 */
export type LiveQueryInput<T> = Watchable<T> | ((db: Database<any>) => Watchable<T>);

/** The query `input` stands for: itself, or what it makes from the provider's database. */
export function resolveQuery<T>(
  input: LiveQueryInput<T>,
  db: Database<any> | undefined,
  hook: string,
): Watchable<T> {
  if (typeof input !== 'function') return input;
  if (!db) {
    throw new MissingProviderError(
      `${hook}((db) => ...)`,
      'a database',
      `pass a query made on one: ${hook}(db.select().from(todos))`,
    );
  }
  return input(db);
}

/**
 * What tells one query from another across renders, where each render builds a new query object:
 * the database it runs on, its SQL text and its parameters.
 */
export interface QueryKey {
  readonly database: unknown;
  readonly sql: string;
  readonly params: readonly unknown[];
}

interface Compilable {
  toSQL(): { sql: string; params: unknown[] };
  /** A query builder's database (a protected field of `QueryBase`, read here only to key by it). */
  readonly runner?: unknown;
}

/** The key of `query`; throws `UsageError`, saying what to do instead, when it has no `toSQL()`. */
export function queryKey(query: Watchable<unknown>, hook: string, instead: string): QueryKey {
  const compilable = query as Partial<Compilable>;
  if (typeof compilable.toSQL !== 'function') {
    throw new UsageError(
      `${hook}(query) tells queries apart by their SQL, and this one has no toSQL(): ${instead}`,
    );
  }
  const { sql, params } = compilable.toSQL();
  return { database: compilable.runner, sql, params };
}

/** True when both keys name the same query on the same database. */
export function sameQuery(a: QueryKey, b: QueryKey): boolean {
  return a.database === b.database && a.sql === b.sql && resultsEqual(a.params, b.params);
}
