import type { AnyTable } from '../../schema/table.js';
import type { DecodedChange, RowRef } from './apply-changes.js';
import type { WriteOperation } from './rules.js';

/**
 * The winning stamps of one row (`_syncline_stamps`): per column (SQL name), of the insert that
 * created it, and of the delete that removed it.
 *
 * @example
 *   const stamps: RowStamps = { cols: { title: h }, created: h, deleted: undefined };
 */
export interface RowStamps {
  cols: Record<string, string>;
  created: string | undefined;
  deleted: string | undefined;
}

/**
 * What the push code knows about one row while it applies a batch: the row as it is now (app
 * values by SQL name; undefined while it does not exist) and its stamps. Changes of the batch
 * update both as they are resolved, so later changes of the batch see earlier ones.
 *
 * @example
 *   const state: RowState = { ref, current: undefined, stamps: { cols: {}, created: undefined, deleted: undefined }, stored: false, stampsChanged: false };
 */
export interface RowState {
  readonly ref: RowRef;
  current: Record<string, unknown> | undefined;
  stamps: RowStamps;
  /** `_syncline_stamps` has a row for it (then it is locked). */
  stored: boolean;
  stampsChanged: boolean;
}

/**
 * One write to an app table that a resolved change needs, in batch order, with the stamp the
 * capture trigger logs it under. `row` and `set` hold app values by SQL name.
 *
 * @example
 *   const write: RowWrite = { kind: 'update', ref, hlc, set: { title: 'Milk' } };
 */
export type RowWrite =
  | {
      readonly kind: 'insert';
      readonly ref: RowRef;
      readonly hlc: string;
      readonly row: Record<string, unknown>;
    }
  | {
      readonly kind: 'update';
      readonly ref: RowRef;
      readonly hlc: string;
      readonly set: Record<string, unknown>;
    }
  | { readonly kind: 'delete'; readonly ref: RowRef; readonly hlc: string };

/**
 * Asks the write rules about one row change (rows by SQL name); resolves to the reason it is
 * refused, or undefined.
 *
 * @example
 *   const check: WriteCheck = (table, op, before, after) => rules.checkWrite(table, user, op, jsKeys(before), jsKeys(after));
 */
export type WriteCheck = (
  table: AnyTable,
  op: WriteOperation,
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown> | undefined,
) => Promise<string | undefined>;

/**
 * A stamp `hlc` beats `stamp` when `stamp` is older, or missing (data from before capture). Equal
 * stamps come only from one client transaction, that is one batch: there the later change wins.
 */
function beats(hlc: string, stamp: string | undefined): boolean {
  return stamp === undefined || stamp <= hlc;
}

function later(a: string | undefined, b: string): string {
  return a !== undefined && a > b ? a : b;
}

/** The columns of `values` whose stamp `hlc` beats. */
function winners(state: RowState, values: Record<string, unknown>, hlc: string): Record<string, unknown> {
  const won: Record<string, unknown> = {};
  for (const name of Object.keys(values)) if (beats(hlc, state.stamps.cols[name])) won[name] = values[name];
  return won;
}

/**
 * Resolves the changes of one batch against the rows' current state and stamps, exactly as the
 * conflict table of docs/sync-internals.md says (last writer wins per column; a tombstone stops
 * older inserts and every update; a delete loses to a newer insert), asks the write rules about
 * every change to a row (whether or not its stamps win), and returns the writes in batch order,
 * or the first refusal. Only `states` is changed; nothing is written.
 *
 * @example
 *   const { writes, reason } = await resolveChanges(decoded.changes, states, check);
 */
export async function resolveChanges(
  changes: readonly DecodedChange[],
  states: ReadonlyMap<string, RowState>,
  check: WriteCheck,
): Promise<{ writes: RowWrite[]; reason: string | undefined; lost: RowRef[] }> {
  const writes: RowWrite[] = [];
  // Rows where some change of the batch lost (to a newer stamp or a tombstone): the client that
  // pushed them gets the server's version back with the ack, since no change may reach it.
  const lost = new Map<string, RowRef>();
  for (const change of changes) {
    const { ref, hlc } = change;
    const state = states.get(ref.key)!;
    const stamps = state.stamps;
    const current = state.current;
    if (current && change.op !== 'delete') {
      // An insert of a row that exists is a per-column update. It also moves `created`, so an
      // older delete cannot remove what this insert wrote, whichever arrives first.
      if (change.op === 'insert' && stamps.created !== hlc) {
        stamps.created = later(stamps.created, hlc);
        state.stampsChanged = true;
      }
      const set = winners(state, change.values, hlc);
      const won = Object.keys(set).length > 0;
      if (Object.keys(set).length < Object.keys(change.values).length) lost.set(ref.key, ref);
      // The rule sees what is written, or what the change meant when it lost everywhere: whether a
      // change is allowed must not depend on which stamps happen to be newer.
      const after = { ...current, ...(won ? set : change.values) };
      const reason = await check(ref.table, 'update', current, after);
      if (reason) return { writes, reason, lost: [] };
      if (!won) continue;
      writes.push({ kind: 'update', ref, hlc, set });
      state.current = after;
      for (const name of Object.keys(set)) stamps.cols[name] = hlc;
      state.stampsChanged = true;
    } else if (change.op === 'insert') {
      const row = { ...change.values, ...ref.pk };
      const reason = await check(ref.table, 'insert', undefined, row);
      if (reason) return { writes, reason, lost: [] };
      if (stamps.deleted !== undefined && stamps.deleted > hlc) {
        lost.set(ref.key, ref);
        continue;
      }
      writes.push({ kind: 'insert', ref, hlc, row });
      state.current = row;
      state.stamps = {
        cols: Object.fromEntries(ref.table.$columnList.map((c) => [c.name, hlc])),
        created: hlc,
        deleted: undefined,
      };
      state.stampsChanged = true;
    } else if (change.op === 'delete') {
      if (current) {
        const reason = await check(ref.table, 'delete', current, undefined);
        if (reason) return { writes, reason, lost: [] };
        if (stamps.created !== undefined && stamps.created > hlc) {
          lost.set(ref.key, ref);
          continue;
        }
        writes.push({ kind: 'delete', ref, hlc });
        state.current = undefined;
      }
      stamps.deleted = later(stamps.deleted, hlc);
      state.stampsChanged = true;
    }
    // An update of a missing row is dropped: it never revives a deleted row.
    else lost.set(ref.key, ref);
  }
  return { writes, reason: undefined, lost: [...lost.values()] };
}
