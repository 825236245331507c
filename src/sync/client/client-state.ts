import type { DriverResult } from '../../database/driver.js';
import type { Run } from './client-transaction.js';

/**
 * What the client keeps between runs, in `_syncline_state` and the `_syncline_capture` row: its id
 * (a uuid made once), the cursor (the position of the last server change applied; in the capture
 * row) with the key of the shapes it belongs to, the
 * last HLC stamp (merged on start so stamps grow across restarts), the next mutation id, and the
 * largest batch the server accepted last time (so batches are cut to fit while offline).
 *
 * @example
 *   const state = await readClientState(run);
 *   if (state.shapesKey === shapesKey) hello.cursor = state.cursor;
 */
export interface ClientState {
  readonly clientId: string | undefined;
  readonly cursor: string | undefined;
  readonly shapesKey: string | undefined;
  readonly lastHlc: string | undefined;
  readonly nextMutationId: number;
  readonly maxChangesPerBatch: number | undefined;
}

/**
 * The keys of `_syncline_state` (`cursor` is the name `readClientState` reads the capture row's
 * cursor under; databases of older versions kept it here).
 *
 * @example
 *   await writeState(run, STATE_KEYS.shapesKey, key);
 */
export const STATE_KEYS = {
  clientId: 'client_id',
  cursor: 'cursor',
  shapesKey: 'shapes_key',
  lastHlc: 'last_hlc',
  nextMutationId: 'next_mutation_id',
  maxChangesPerBatch: 'max_changes_per_batch',
} as const;

/** The later of two encoded stamps (their text sorts as they do), either may be missing. */
function greater(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

/**
 * Reads every key of `_syncline_state` at once, with the capture row's cursor and last stamp.
 *
 * @example
 *   const { clientId, nextMutationId } = await readClientState(run);
 */
export async function readClientState(run: Run): Promise<ClientState> {
  // The cursor and a last stamp live in the capture row (remote transactions write them there);
  // the other last stamp is the stamping pass's: the greater counts.
  const { rows } = await run(
    `SELECT key, value FROM _syncline_state
     UNION ALL SELECT '${STATE_KEYS.cursor}', cursor FROM _syncline_capture
     UNION ALL SELECT 'applied_last_hlc', last_hlc FROM _syncline_capture`,
  );
  const values = new Map((rows as { key: string; value: string | null }[]).map((r) => [r.key, r.value]));
  const get = (key: string) => values.get(key) ?? undefined;
  const number = (key: string) => {
    const text = get(key);
    return text === undefined ? undefined : Number(text);
  };
  return {
    clientId: get(STATE_KEYS.clientId),
    cursor: get(STATE_KEYS.cursor),
    shapesKey: get(STATE_KEYS.shapesKey),
    lastHlc: greater(get(STATE_KEYS.lastHlc), get('applied_last_hlc')),
    nextMutationId: number(STATE_KEYS.nextMutationId) ?? 1,
    maxChangesPerBatch: number(STATE_KEYS.maxChangesPerBatch),
  };
}

/**
 * Writes one key of `_syncline_state`, in the transaction `run` belongs to.
 *
 * @example
 *   await writeState(run, STATE_KEYS.lastHlc, encodeHlc(clock.last));
 */
export function writeState(
  run: Run,
  key: string,
  value: string | number,
): DriverResult | Promise<DriverResult> {
  return writeStates(run, [[key, value]]);
}

/** The upsert of n keys, by n: a fixed text per count, so the driver's prepared statement is reused. */
const UPSERTS: string[] = [];

/**
 * Writes several keys of `_syncline_state` in one statement, in the transaction `run` belongs to:
 * what runs after every local commit (the next mutation id and the last stamp) costs one statement.
 *
 * @example
 *   await writeStates(run, [[STATE_KEYS.nextMutationId, 8], [STATE_KEYS.lastHlc, clock.last!]]);
 */
export function writeStates(
  run: Run,
  entries: readonly (readonly [string, string | number])[],
): DriverResult | Promise<DriverResult> {
  let sql = UPSERTS[entries.length];
  if (sql === undefined) {
    const values = entries.map(() => '(?, ?)').join(', ');
    sql = `INSERT INTO _syncline_state (key, value) VALUES ${values} ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
    UPSERTS[entries.length] = sql;
  }
  const params: string[] = [];
  for (const [key, value] of entries) params.push(key, String(value));
  return run(sql, params);
}
