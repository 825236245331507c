import type { ClientClock } from './client-clock.js';
import { STATE_KEYS, writeStates } from './client-state.js';
import type { Run } from './client-transaction.js';

/**
 * What a stamping pass did: the mutation ids it gave out (none when the outbox had no new rows).
 *
 * @example
 *   const { mutationIds } = await stampOutbox(run, clock, 10_000); // [7] after one transaction
 */
export interface StampResult {
  readonly mutationIds: readonly number[];
  /** The last seq the pass stamped (undefined when it stamped nothing). */
  readonly lastSeq?: number;
}

/**
 * What a pass reads first, in one statement of index probes (no scan, whatever the outbox holds):
 * the outbox's first seq and whether that row is stamped, its last seq and that row's wall time,
 * whether the row at the `stampedTo` hint (bound twice) is stamped and the seq after it, and the
 * next mutation id. The unstamped rows are the tail of the outbox (a new row gets the largest seq
 * plus one, and only stamped rows are deleted), so they start at the first row when that one is
 * unstamped, or right after the hint when the hint's row is stamped.
 */
const PROBE_SQL = `SELECT
    (SELECT seq FROM _syncline_outbox ORDER BY seq LIMIT 1),
    (SELECT mutation_id IS NOT NULL FROM _syncline_outbox ORDER BY seq LIMIT 1),
    (SELECT seq FROM _syncline_outbox ORDER BY seq DESC LIMIT 1),
    (SELECT wall_ms FROM _syncline_outbox ORDER BY seq DESC LIMIT 1),
    (SELECT mutation_id IS NOT NULL FROM _syncline_outbox WHERE seq = ?),
    (SELECT seq FROM _syncline_outbox WHERE seq > ? ORDER BY seq LIMIT 1),
    (SELECT value FROM _syncline_state WHERE key = '${STATE_KEYS.nextMutationId}')`;

/**
 * The first unstamped seq when neither probe tells it (stamped rows at the head, and no usable
 * hint): reads backwards from the end to the last stamped row, over the unstamped rows only.
 */
const FIRST_UNSTAMPED_SQL = `SELECT min(seq) FROM _syncline_outbox
  WHERE seq > coalesce((SELECT seq FROM _syncline_outbox WHERE mutation_id IS NOT NULL ORDER BY seq DESC LIMIT 1), 0)`;

const STAMP_SQL = 'UPDATE _syncline_outbox SET mutation_id = ?, hlc = ? WHERE seq >= ? AND seq <= ?';

export type MaybePromise<T> = T | Promise<T>;

/**
 * Calls `next` with `value`, at once when it is not a promise: with a synchronous driver
 * (better-sqlite3) a whole pass runs without a microtask.
 */
export function andThen<T, R>(value: MaybePromise<T>, next: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

const NOTHING: StampResult = { mutationIds: [] };

/**
 * Gives every outbox row that has no mutation id yet a mutation id and an HLC stamp, in the
 * transaction `run` belongs to. `ends` are the outbox's last seqs after local commits (recorded
 * when each commit was heard, see `LocalReplica.noteCommit`): the rows up to each end form one
 * batch, one local transaction, so a pass that runs after several commits still gives each its
 * own mutation id; rows past the last end (a commit not heard, such as one before a crash) form
 * one more. Each batch gets one stamp, issued at its last row's wall time (the clock keeps stamps
 * growing). A batch of more than `maxChanges` rows (the server's `maxChangesPerBatch`) is split
 * over several mutation ids, each with its own, increasing stamp: the server applies each part
 * whole, but no longer the whole local transaction at once. The next mutation id and the last
 * stamp are stored in `_syncline_state` with the rows. `stampedTo` is the last seq an earlier
 * pass stamped, a hint that is checked before use (rows acknowledged since, a restart). The
 * common pass, one batch, costs three statements (a probe, one update of the rows, one write of
 * both state keys), reads no row into JavaScript, and returns without a promise when the driver
 * answers synchronously. The result carries the last seq stamped, the next pass's hint.
 *
 * @example
 *   await clientTransaction(db, false, (run) => stampOutbox(run, clock, 10_000, [41, 42], 40));
 */
export function stampOutbox(
  run: Run,
  clock: ClientClock,
  maxChanges: number,
  ends: readonly number[] = [],
  stampedTo = 0,
): MaybePromise<StampResult> {
  return andThen(run(PROBE_SQL, [stampedTo, stampedTo], { arrayMode: true }), ({ rows }) => {
    const [head, headStamped, last, wall, hintStamped, afterHint, stored] = rows[0] as (number | null)[];
    if (last === null) return NOTHING;
    const next = stored === null || stored === undefined ? 1 : Number(stored);
    const stamp = (first: number | null): MaybePromise<StampResult> => {
      if (first === null) return NOTHING;
      const cuts = ends.filter((end) => end >= first && end < last);
      if (last - first + 1 > maxChanges || cuts.length > 0)
        return stampBatches(run, clock, first, next, maxChanges, cuts);
      return andThen(run(STAMP_SQL, [next, clock.stampAt(Number(wall)), first, last]), () =>
        andThen(storeStampState(run, clock, next + 1), () => ({ mutationIds: [next], lastSeq: last })),
      );
    };
    if (!headStamped) return stamp(head);
    if (hintStamped) return stamp(afterHint);
    return andThen(run(FIRST_UNSTAMPED_SQL, [], { arrayMode: true }), (found) =>
      stamp(((found.rows[0] as unknown[])[0] as number | null) ?? null),
    );
  });
}

/**
 * Several batches, or one over `maxChanges` rows: reads the unstamped rows from `first` on, cuts
 * them after each of `cuts` (ascending), and numbers each part (`numberRows`).
 */
async function stampBatches(
  run: Run,
  clock: ClientClock,
  first: number,
  next: number,
  maxChanges: number,
  cuts: readonly number[],
): Promise<StampResult> {
  const read = run('SELECT seq, wall_ms FROM _syncline_outbox WHERE seq >= ? ORDER BY seq', [first], {
    arrayMode: true,
  });
  const all = (read instanceof Promise ? await read : read).rows as [number, number][];
  const ids: number[] = [];
  let cut = 0;
  for (let start = 0; start < all.length; ) {
    while (cut < cuts.length && cuts[cut] < all[start][0]) cut++;
    const end = cut < cuts.length ? cuts[cut] : Number.POSITIVE_INFINITY;
    let stop = start;
    while (stop < all.length && all[stop][0] <= end) stop++;
    await numberRows(run, clock, all, start, stop, next, maxChanges, ids);
    start = stop;
  }
  await storeStampState(run, clock, next + ids.length);
  return { mutationIds: ids, lastSeq: all[all.length - 1]?.[0] };
}

/**
 * Numbers `rows[from, to)` (`[seq, wall_ms]`, in seq order, all of one local transaction) as
 * batches of at most `maxChanges` rows, each with a fresh stamp at its latest wall time, the ids
 * counting on from `nextMutationId` plus the ids already in `ids` (where each new id goes). With
 * a synchronous driver it takes no microtask per batch (a pass may number a thousand).
 */
async function numberRows(
  run: Run,
  clock: ClientClock,
  rows: readonly (readonly [number, number])[],
  from: number,
  to: number,
  nextMutationId: number,
  maxChanges: number,
  ids: number[],
): Promise<void> {
  for (let start = from; start < to; start += maxChanges) {
    const stop = Math.min(to, start + maxChanges);
    let wall = 0;
    for (let i = start; i < stop; i++) wall = Math.max(wall, Number(rows[i][1]));
    const id = nextMutationId + ids.length;
    const done = run(STAMP_SQL, [id, clock.stampAt(wall), rows[start][0], rows[stop - 1][0]]);
    if (done instanceof Promise) await done;
    ids.push(id);
  }
}

/**
 * Numbers consecutive outbox rows (`[seq, wall_ms]`, in seq order, all of one local transaction)
 * as batches of at most `maxChanges` rows from `nextMutationId` on, each with a fresh stamp at its
 * latest wall time. Returns the ids given; the caller stores the next one. Used to re-cut batches
 * that turned out too large for the server.
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
  await numberRows(run, clock, rows, 0, rows.length, nextMutationId, maxChanges, ids);
  return ids;
}

/**
 * Stores what a pass that gave out mutation ids leaves behind: the next mutation id and the last
 * stamp, in one statement, in the same transaction as the rows.
 *
 * @example
 *   await storeStampState(run, clock, ids[ids.length - 1] + 1);
 */
export function storeStampState(run: Run, clock: ClientClock, nextMutationId: number): ReturnType<Run> {
  const last = clock.last;
  return writeStates(
    run,
    last === undefined
      ? [[STATE_KEYS.nextMutationId, nextMutationId]]
      : [
          [STATE_KEYS.nextMutationId, nextMutationId],
          [STATE_KEYS.lastHlc, last],
        ],
  );
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
