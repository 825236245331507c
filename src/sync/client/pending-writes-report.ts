import type { Database } from '../../database/database.js';
import { MUTATION_OP } from './mutation-record.js';

/**
 * What the outbox holds (`sync.pending()`): the local writes not acknowledged by the server yet,
 * for a "3 changes not synced yet" badge. `transactions` counts local transactions (each pushed
 * as one batch; the writes not stamped yet count as one), `changes` the row writes captured,
 * `mutations` the mutator calls, `tables` the row writes per table, `bytes` the size of their
 * stored values, and `oldest` when the oldest of them was made (undefined when none waits).
 *
 * @example
 *   const { transactions } = await sync.pending();
 *   badge.textContent = transactions === 0 ? 'synced' : `${transactions} changes waiting`;
 */
export interface PendingWrites {
  readonly transactions: number;
  readonly changes: number;
  readonly mutations: number;
  readonly tables: Readonly<Record<string, number>>;
  readonly bytes: number;
  readonly oldest: Date | undefined;
}

/** Reads what the outbox holds, in one read transaction's worth of statements. */
export async function readPendingWrites(db: Database): Promise<PendingWrites> {
  const run = async (text: string, params: unknown[] = []) =>
    (await db.driver.query({ sql: text, params, arrayMode: true, needsBigInt: false })).rows as unknown[][];
  const groups = await run(
    `SELECT table_name, op = ? AS mutation, count(*), min(wall_ms), sum(length(pk) + coalesce(length("row"), 0))
       FROM _syncline_outbox GROUP BY table_name, op = ?`,
    [MUTATION_OP, MUTATION_OP],
  );
  const [[batches, lastBatched, lastSeq]] = (await run(
    'SELECT (SELECT count(*) FROM _syncline_batches), (SELECT max(last_seq) FROM _syncline_batches), (SELECT max(seq) FROM _syncline_outbox)',
  )) as [[number, number | null, number | null]];
  const tables: Record<string, number> = {};
  let changes = 0;
  let mutations = 0;
  let bytes = 0;
  let oldest: number | undefined;
  for (const [table, mutation, count, first, size] of groups as [string, number, number, number, number][]) {
    if (mutation) mutations += Number(count);
    else {
      changes += Number(count);
      tables[table] = Number(count);
    }
    bytes += Number(size ?? 0);
    oldest = oldest === undefined ? Number(first) : Math.min(oldest, Number(first));
  }
  const unstamped = lastSeq !== null && (lastBatched === null || lastSeq > lastBatched) ? 1 : 0;
  return {
    transactions: Number(batches) + unstamped,
    changes,
    mutations,
    tables,
    bytes,
    oldest: oldest === undefined ? undefined : new Date(oldest),
  };
}
