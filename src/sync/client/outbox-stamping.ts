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
 * Everything a pass reads, in one statement: how many rows are unstamped, their first and last
 * seq and latest wall time, and the next mutation id. The unstamped rows are the tail of the
 * outbox (a new row gets the largest seq plus one, and only stamped rows are deleted), so the
 * subquery reads backwards from the end to the first stamped row, whatever the outbox's length.
 * Nothing is kept in memory between passes: a restart, a crash between a commit and its pass, or
 * another writer of the next mutation id (a re-cut, a welcome) cannot leave a stale copy.
 */
const PENDING_SQL = `SELECT count(*), min(seq), max(seq), max(wall_ms),
    (SELECT value FROM _syncline_state WHERE key = '${STATE_KEYS.nextMutationId}')
  FROM _syncline_outbox
  WHERE seq > coalesce((SELECT seq FROM _syncline_outbox WHERE mutation_id IS NOT NULL ORDER BY seq DESC LIMIT 1), 0)`;

const STAMP_SQL = 'UPDATE _syncline_outbox SET mutation_id = ?, hlc = ? WHERE seq >= ? AND seq <= ?';

type MaybePromise<T> = T | Promise<T>;

/**
 * Calls `next` with `value`, at once when it is not a promise: with a synchronous driver
 * (better-sqlite3) a whole pass runs without a microtask, as it runs after every local commit.
 */
function then<T, R>(value: MaybePromise<T>, next: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

const NOTHING: StampResult = { mutationIds: [] };

/**
 * Gives every outbox row that has no mutation id yet a mutation id and an HLC stamp, in the
 * transaction `run` belongs to. The rows written since the last pass form one batch (one local
 * transaction, when passes run after each commit) with one stamp issued at the rows' latest wall
 * time. A batch of more than `maxChanges` rows (the server's `maxChangesPerBatch`) is split over
 * several mutation ids, each with its own, increasing stamp: the server applies each part whole,
 * but no longer the whole local transaction at once. The next mutation id and the last stamp are
 * stored in `_syncline_state` with the rows. A pass runs after every local commit, so it costs
 * three statements (one read, one update of the rows, one write of both state keys), reads no
 * row into JavaScript unless the batch has to be split, and returns without a promise when the
 * driver answers synchronously.
 *
 * @example
 *   await clientTransaction(db, false, (run) => stampOutbox(run, clock, 10_000));
 */
export function stampOutbox(run: Run, clock: ClientClock, maxChanges: number): MaybePromise<StampResult> {
  return then(run(PENDING_SQL, [], { arrayMode: true }), ({ rows }) => {
    const [count, first, last, wall, stored] = rows[0] as [number, number, number, number, string | null];
    if (!count) return NOTHING;
    const next = stored === null || stored === undefined ? 1 : Number(stored);
    if (count > maxChanges) return stampSplit(run, clock, first, next, maxChanges);
    return then(run(STAMP_SQL, [next, clock.stampAt(Number(wall)), first, last]), () =>
      then(storeStampState(run, clock, next + 1), () => ({ mutationIds: [next] })),
    );
  });
}

/** A batch over `maxChanges` rows: read the rows from `first` on and cut them (`assignBatches`). */
async function stampSplit(
  run: Run,
  clock: ClientClock,
  first: number,
  next: number,
  maxChanges: number,
): Promise<StampResult> {
  const { rows } = await run(
    'SELECT seq, wall_ms FROM _syncline_outbox WHERE seq >= ? ORDER BY seq',
    [first],
    {
      arrayMode: true,
    },
  );
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
    await run(STAMP_SQL, [id, clock.stampAt(wall), part[0][0], part[part.length - 1][0]]);
    ids.push(id);
  }
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
