import type { MaybePromise } from '../../database/driver.js';
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
}

/**
 * What a pass reads first, in one statement of index probes (no scan, whatever the outbox holds):
 * the first unstamped seq (the first after the last batch's `last_seq`: the unstamped rows are
 * the tail of the outbox), the last seq and that row's wall time, and the next mutation id.
 */
const PROBE_SQL = `SELECT
    (SELECT seq FROM _syncline_outbox WHERE seq > done.seq ORDER BY seq LIMIT 1),
    (SELECT seq FROM _syncline_outbox ORDER BY seq DESC LIMIT 1),
    (SELECT wall_ms FROM _syncline_outbox ORDER BY seq DESC LIMIT 1),
    (SELECT value FROM _syncline_state WHERE key = '${STATE_KEYS.nextMutationId}')
  FROM (SELECT coalesce(max(last_seq), 0) AS seq FROM _syncline_batches) AS done`;

/** Batch rows per INSERT (4 parameters each, well under SQLite's oldest limit of 999). */
const BATCHES_PER_STATEMENT = 64;
const batchInserts = new Map<number, string>();

/**
 * The INSERT of `rows` batches: each the outbox rows from `first_seq` to `last_seq` as mutation
 * `mutation_id`, stamped `hlc` (four parameters per batch, in that column order).
 */
function batchInsertSql(rows: number): string {
  let text = batchInserts.get(rows);
  if (!text) {
    text = `INSERT INTO _syncline_batches (mutation_id, hlc, first_seq, last_seq) VALUES ${new Array(rows).fill('(?, ?, ?, ?)').join(', ')}`;
    batchInserts.set(rows, text);
  }
  return text;
}

/**
 * Calls `next` with `value`, at once when it is not a promise: with a synchronous driver
 * (better-sqlite3) a whole pass runs without a microtask.
 */
export function andThen<T, R>(value: MaybePromise<T>, next: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

const NOTHING: StampResult = { mutationIds: [] };

/**
 * Gives the outbox rows that belong to no batch yet their batches (`_syncline_batches`): a
 * mutation id and an HLC stamp each, in the transaction `run` belongs to. `ends` are the outbox's
 * last seqs after local commits (recorded when each commit was heard, see
 * `LocalReplica.noteCommit`): the rows up to each end form one batch, one local transaction, so a
 * pass that runs after several commits still gives each its own mutation id; rows past the last
 * end (a commit not heard, such as one before a crash) form one more. Each batch gets one stamp,
 * issued at its last row's wall time (the clock keeps stamps growing). A batch of more than
 * `maxChanges` rows (the server's `maxChangesPerBatch`) is split over several mutation ids, each
 * with its own, increasing stamp: the server applies each part whole, but no longer the whole
 * local transaction at once. The next mutation id and the last stamp are stored in
 * `_syncline_state` with the batches. The common pass, one batch, costs three statements (a probe,
 * one batch row, one write of both state keys) however many rows the transaction wrote, reads no
 * outbox row into JavaScript, and returns without a promise when the driver answers synchronously.
 *
 * @example
 *   await clientTransaction(db, false, (run) => stampOutbox(run, clock, 10_000, [41, 42]));
 */
export function stampOutbox(
  run: Run,
  clock: ClientClock,
  maxChanges: number,
  ends: readonly number[] = [],
): MaybePromise<StampResult> {
  return andThen(run(PROBE_SQL, [], { arrayMode: true }), ({ rows }) => {
    const [first, last, wall, stored] = rows[0] as (number | string | null)[];
    if (first === null || last === null) return NOTHING;
    const [from, to] = [Number(first), Number(last)];
    const next = stored === null || stored === undefined ? 1 : Number(stored);
    const cuts = ends.filter((end) => end >= from && end < to);
    // Seqs are consecutive within the tail (a rolled-back row's seq is given again), so this is its length.
    if (to - from + 1 > maxChanges || cuts.length > 0)
      return stampBatches(run, clock, from, next, maxChanges, cuts);
    return andThen(run(batchInsertSql(1), [next, clock.stampAt(Number(wall)), from, to]), () =>
      andThen(storeStampState(run, clock, next + 1), () => ({ mutationIds: [next] })),
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
  const batches: unknown[] = [];
  let cut = 0;
  for (let start = 0; start < all.length; ) {
    while (cut < cuts.length && cuts[cut] < all[start][0]) cut++;
    const end = cut < cuts.length ? cuts[cut] : Number.POSITIVE_INFINITY;
    let stop = start;
    while (stop < all.length && all[stop][0] <= end) stop++;
    numberRows(clock, all, start, stop, next, maxChanges, ids, batches);
    start = stop;
  }
  await writeBatches(run, batches);
  await storeStampState(run, clock, next + ids.length);
  return { mutationIds: ids };
}

/**
 * Numbers `rows[from, to)` (`[seq, wall_ms]`, in seq order, all of one local transaction) as
 * batches of at most `maxChanges` rows, each with a fresh stamp at its latest wall time, the ids
 * counting on from `nextMutationId` plus the ids already in `ids` (where each new id goes). Each
 * batch's row of `_syncline_batches` goes into `batches` (`writeBatches` writes them).
 */
function numberRows(
  clock: ClientClock,
  rows: readonly (readonly [number, number])[],
  from: number,
  to: number,
  nextMutationId: number,
  maxChanges: number,
  ids: number[],
  batches: unknown[],
): void {
  for (let start = from; start < to; start += maxChanges) {
    const stop = Math.min(to, start + maxChanges);
    let wall = 0;
    for (let i = start; i < stop; i++) wall = Math.max(wall, Number(rows[i][1]));
    const id = nextMutationId + ids.length;
    batches.push(id, clock.stampAt(wall), rows[start][0], rows[stop - 1][0]);
    ids.push(id);
  }
}

/**
 * Writes `_syncline_batches` rows (`[mutation_id, hlc, first_seq, last_seq]` after one another):
 * a pass that follows a thousand small commits writes them in a few multi-row INSERTs, of a power
 * of two rows each (so a handful of statement texts serve every count), not one per commit.
 */
async function writeBatches(run: Run, batches: readonly unknown[]): Promise<void> {
  const total = batches.length / 4;
  for (let from = 0; from < total; ) {
    const rows = Math.min(BATCHES_PER_STATEMENT, 2 ** Math.floor(Math.log2(total - from)));
    const params = rows === total ? batches : batches.slice(from * 4, (from + rows) * 4);
    const done = run(batchInsertSql(rows), params);
    if (done instanceof Promise) await done;
    from += rows;
  }
}

/**
 * Numbers consecutive outbox rows (`[seq, wall_ms]`, in seq order, all of one local transaction)
 * as batches of at most `maxChanges` rows from `nextMutationId` on, each with a fresh stamp at its
 * latest wall time, and writes them. Returns the ids given; the caller stores the next one. Used
 * to re-cut batches that turned out too large for the server.
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
  const batches: unknown[] = [];
  numberRows(clock, rows, 0, rows.length, nextMutationId, maxChanges, ids, batches);
  await writeBatches(run, batches);
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
