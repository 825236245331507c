import type { Database } from '../../database/database.js';
import type { Transaction } from '../../database/transaction.js';
import { type MutatorDefinition, mutatorArgsJson, validateMutatorArgs } from '../mutators/define-mutators.js';
import type { ClientClock } from './client-clock.js';
import type { Run } from './client-transaction.js';
import { readNextMutationId, stampOutbox, storeStampState } from './outbox-stamping.js';

/**
 * The outbox row that opens a mutation's batch: `table_name` is this (no synced table is named
 * so), `op` is `MUTATION_OP`, and `row` holds `{ name, args }` as JSON. The rows after it in the
 * batch are what the mutator's optimistic run wrote, captured by the triggers as any write is.
 */
export const MUTATION_TABLE = '_syncline_mutation';
/** The `op` of a mutation's opening outbox row (see `MUTATION_TABLE`). */
export const MUTATION_OP = 'mutation';

/**
 * What recording a mutation needs of the local replica: its database, client id and clock, the
 * server's batch limit, and the ends of the local commits noted and not stamped yet.
 *
 * @example
 *   await recordMutation(replica, 'clearCompleted', mutators.clearCompleted, { listId });
 */
export interface MutationHost {
  readonly db: Database;
  readonly clientId: string;
  readonly clock: ClientClock;
  readonly maxChangesPerBatch: number;
  notedEnds(): Promise<readonly number[]>;
}

function runOn(tx: Transaction): Run {
  return (sql, params = [], options) =>
    tx.run({ sql, params, arrayMode: options?.arrayMode ?? false, needsBigInt: options?.bigInts ?? false });
}

/** The later of the stored last stamps (the stamping pass's and the remote applies'), if any. */
const STORED_STAMPS = `SELECT (SELECT value FROM _syncline_state WHERE key = 'last_hlc'),
  (SELECT last_hlc FROM _syncline_capture)`;

/**
 * Runs a mutator on the client, optimistically, and records it for the server, in one SQLite
 * transaction: the outbox rows of earlier local transactions not stamped yet get their batches
 * first (so they keep their order before it), then an opening row names the mutator and its
 * arguments, the mutator runs on `tx` (its writes captured as any local write, so they count as
 * pending and live queries see them once it commits), and the whole becomes one batch with the
 * next mutation id and a stamp of its own: never cut by `maxChangesPerBatch`, pushed as the
 * mutation (outbox-push.ts). The arguments go through JSON and the validator first, so both runs
 * see the same values. A mutator that throws rolls everything back and the error is thrown here.
 * Returns the mutation id.
 *
 * @example
 *   const mutationId = await recordMutation(replica, 'clearCompleted', mutators.clearCompleted, { listId });
 */
export async function recordMutation(
  host: MutationHost,
  name: string,
  definition: MutatorDefinition<unknown>,
  args: unknown,
): Promise<number> {
  const json = mutatorArgsJson(name, args);
  const checked = await validateMutatorArgs(
    name,
    definition,
    json === undefined ? undefined : JSON.parse(json),
  );
  const ends = await host.notedEnds();
  return host.db.transaction(async (tx) => {
    const run = runOn(tx);
    // Another tab sharing the database may have stamped since this clock last did.
    const { rows: stamps } = await run(STORED_STAMPS, [], { arrayMode: true });
    for (const stamp of stamps[0] as (string | null)[]) if (stamp) host.clock.receive(stamp);
    await stampOutbox(run, host.clock, host.maxChangesPerBatch, ends);
    const opening =
      json === undefined
        ? `{"name":${JSON.stringify(name)}}`
        : `{"name":${JSON.stringify(name)},"args":${json}}`;
    const { rows } = await run(
      `INSERT INTO _syncline_outbox (table_name, op, pk, "row", wall_ms) VALUES (?, ?, '{}', ?, ?) RETURNING seq`,
      [MUTATION_TABLE, MUTATION_OP, opening, Date.now()],
      { arrayMode: true },
    );
    const first = Number((rows[0] as unknown[])[0]);
    const mutationId = await readNextMutationId(run);
    await definition.run(tx, checked, {
      location: 'client',
      user: undefined,
      clientId: host.clientId,
      mutationId,
    });
    const { rows: last } = await run('SELECT max(seq) FROM _syncline_outbox', [], { arrayMode: true });
    await run('INSERT INTO _syncline_batches (mutation_id, hlc, first_seq, last_seq) VALUES (?, ?, ?, ?)', [
      mutationId,
      host.clock.stampAt(Date.now()),
      first,
      Number((last[0] as unknown[])[0]),
    ]);
    await storeStampState(run, host.clock, mutationId + 1);
    return mutationId;
  });
}
