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
  /** The shapes the rows and the cursor stand for (`ShapeJson[]` as JSON), once a run stored them. */
  readonly heldShapes: string | undefined;
  readonly lastHlc: string | undefined;
  readonly nextMutationId: number;
  readonly maxChangesPerBatch: number | undefined;
  /** Rows to fetch from the server again (`LocalReplica.unresolved`), as JSON. */
  readonly unresolved: string | undefined;
  /** The columns of the synced tables when the database was last opened (`ClientColumns` as JSON). */
  readonly syncedColumns: string | undefined;
}

/**
 * The keys of `_syncline_state` (the cursor lives in the `_syncline_capture` row).
 *
 * @example
 *   await writeState(run, STATE_KEYS.shapesKey, key);
 */
export const STATE_KEYS = {
  clientId: 'client_id',
  shapesKey: 'shapes_key',
  heldShapes: 'held_shapes',
  lastHlc: 'last_hlc',
  nextMutationId: 'next_mutation_id',
  maxChangesPerBatch: 'max_changes_per_batch',
  unresolved: 'unresolved_rows',
  syncedColumns: 'synced_columns',
} as const;

/** The later of two encoded stamps (their text sorts as they do), either may be missing. */
function later(a: string | undefined, b: string | undefined): string | undefined {
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
  const { rows } = await run('SELECT key, value FROM _syncline_state');
  const values = new Map((rows as { key: string; value: string | null }[]).map((r) => [r.key, r.value]));
  // The capture row holds the cursor and the last stamp of remote transactions; the other last
  // stamp is the stamping pass's: the later counts.
  const { rows: capture } = await run('SELECT cursor, last_hlc FROM _syncline_capture');
  const applied = capture[0] as { cursor: string | null; last_hlc: string | null } | undefined;
  const get = (key: string) => values.get(key) ?? undefined;
  const number = (key: string) => {
    const text = get(key);
    return text === undefined ? undefined : Number(text);
  };
  return {
    clientId: get(STATE_KEYS.clientId),
    cursor: applied?.cursor ?? undefined,
    shapesKey: get(STATE_KEYS.shapesKey),
    heldShapes: get(STATE_KEYS.heldShapes),
    lastHlc: later(get(STATE_KEYS.lastHlc), applied?.last_hlc ?? undefined),
    nextMutationId: number(STATE_KEYS.nextMutationId) ?? 1,
    maxChangesPerBatch: number(STATE_KEYS.maxChangesPerBatch),
    unresolved: get(STATE_KEYS.unresolved),
    syncedColumns: get(STATE_KEYS.syncedColumns),
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
