import type { ClientClock } from './client-clock.js';
import { STATE_KEYS, writeState } from './client-state.js';
import type { Run } from './client-transaction.js';

/**
 * What a stamping pass did: the mutation ids it gave out (none when the outbox had no new rows).
 *
 * @example
 *   const { mutationIds } = await stampOutbox(run, clock, 10_000); // [7] after one transaction
 */
export interface StampResult {
  readonly mutationIds: readonly number[];
}

/**
 * The first seq after every stamped row: the unstamped rows are the tail of the outbox (a new row
 * gets the largest seq plus one, and only stamped rows are deleted), so reading backwards from the
 * end stops at the first stamped row, whatever the outbox's length.
 */
async function firstUnstampedSeq(run: Run): Promise<number> {
  const { rows } = await run(
    'SELECT seq FROM _syncline_outbox WHERE mutation_id IS NOT NULL ORDER BY seq DESC LIMIT 1',
    [],
    { arrayMode: true },
  );
  return rows.length === 0 ? 0 : Number((rows[0] as unknown[])[0]) + 1;
}

/**
 * Gives every outbox row that has no mutation id yet a mutation id and an HLC stamp, in the
 * transaction `run` belongs to. The rows written since the last pass form one batch (one local
 * transaction, when passes run after each commit) with one stamp issued at the rows' latest wall
 * time. A batch of more than `maxChanges` rows (the server's `maxChangesPerBatch`) is split over
 * several mutation ids, each with its own, increasing stamp: the server applies each part whole,
 * but no longer the whole local transaction at once. The next mutation id and the last stamp are
 * stored in `_syncline_state` with the rows.
 *
 * @example
 *   await clientTransaction(db, false, (run) => stampOutbox(run, clock, 10_000));
 */
export async function stampOutbox(run: Run, clock: ClientClock, maxChanges: number): Promise<StampResult> {
  const from = await firstUnstampedSeq(run);
  const { rows } = await run(
    'SELECT seq, wall_ms FROM _syncline_outbox WHERE seq >= ? ORDER BY seq',
    [from],
    {
      arrayMode: true,
    },
  );
  if (rows.length === 0) return { mutationIds: [] };
  const next = await readNextMutationId(run);
  const mutationIds = await assignBatches(run, clock, rows as [number, number][], next, maxChanges);
  await storeStampState(run, clock, next + mutationIds.length);
  return { mutationIds };
}

/**
 * Numbers consecutive outbox rows (`[seq, wall_ms]`, in seq order, all of one local transaction)
 * as batches of at most `maxChanges` rows from `nextMutationId` on, each with a fresh stamp at its
 * latest wall time. Returns the ids given; the caller stores the next one. Also used to re-cut
 * batches that turned out too large for the server.
 *
 * @example
 *   const ids = await assignBatches(run, clock, [[1, 1700000000000], [2, 1700000000001]], 7, 10_000);
 */
export async function assignBatches(
  run: Run,
  clock: ClientClock,
  rows: readonly (readonly [number, number])[],
  nextMutationId: number,
  maxChanges: number,
): Promise<number[]> {
  const ids: number[] = [];
  for (let start = 0; start < rows.length; start += maxChanges) {
    const part = rows.slice(start, start + maxChanges);
    let wall = 0;
    for (const [, wallMs] of part) wall = Math.max(wall, Number(wallMs));
    const id = nextMutationId + ids.length;
    await run('UPDATE _syncline_outbox SET mutation_id = ?, hlc = ? WHERE seq >= ? AND seq <= ?', [
      id,
      clock.stampAt(wall),
      part[0][0],
      part[part.length - 1][0],
    ]);
    ids.push(id);
  }
  return ids;
}

/**
 * Stores what a pass that gave out mutation ids leaves behind: the next mutation id and the last
 * stamp, in the same transaction as the rows.
 *
 * @example
 *   await storeStampState(run, clock, ids[ids.length - 1] + 1);
 */
export async function storeStampState(run: Run, clock: ClientClock, nextMutationId: number): Promise<void> {
  await writeState(run, STATE_KEYS.nextMutationId, nextMutationId);
  const last = clock.last;
  if (last !== undefined) await writeState(run, STATE_KEYS.lastHlc, last);
}

/**
 * The next mutation id, read in the transaction `run` belongs to.
 *
 * @example
 *   const next = await readNextMutationId(run);
 */
export async function readNextMutationId(run: Run): Promise<number> {
  const { rows } = await run("SELECT value FROM _syncline_state WHERE key = 'next_mutation_id'", [], {
    arrayMode: true,
  });
  return rows.length === 0 ? 1 : Number((rows[0] as unknown[])[0]);
}
