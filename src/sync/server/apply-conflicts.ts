import type { AnyColumn } from '../../schema/column.js';
import type { ReferenceAction } from '../../schema/column-builder.js';
import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import type { DecodedChange, RowRef } from './apply-changes.js';
import type { WriteOperation } from './rules.js';

/**
 * The winning stamps of one row (`_syncline_stamps`): per column (SQL name), of the insert that
 * created it, and of the delete that removed it. While the row is deleted, `image` holds its
 * values as they were then (app values by SQL name, their stamps in `cols`), whoever deleted it,
 * with the updates that arrived since merged in per column (`updatedInImage` names those
 * columns): a re-creating insert older than such an update still ends with the update's value,
 * as it would had the update arrived after the insert.
 *
 * @example
 *   const stamps: RowStamps = { cols: { title: h }, created: h, deleted: undefined, image: undefined, updatedInImage: new Set() };
 */
export interface RowStamps {
  cols: Record<string, string>;
  created: string | undefined;
  deleted: string | undefined;
  image: Record<string, unknown> | undefined;
  updatedInImage: Set<string>;
}

/**
 * What the push code knows about one row while it applies a batch: the row as it is now (app
 * values by SQL name; undefined while it does not exist) and its stamps. Changes of the batch
 * update both as they are resolved, so later changes of the batch see earlier ones. Stamps are
 * written back whole (`wholeStamps`: the row was deleted, re-created, or its image changed) or,
 * for a row that stayed, as the columns the batch stamped (`stampedColumns`) merged into what is
 * stored, so that stamps the capture trigger wrote meanwhile (a foreign key's action on the row)
 * are kept; or not at all when the batch's one change of the row deleted it (`leftToTrigger`: the
 * capture trigger wrote the tombstone and image the batch leaves, as it does for every delete).
 *
 * @example
 *   const state: RowState = { ref, current: undefined, stamps, stored: false, stampsChanged: false, wholeStamps: false, stampedColumns: new Set(), leftToTrigger: false };
 */
export interface RowState {
  readonly ref: RowRef;
  current: Record<string, unknown> | undefined;
  stamps: RowStamps;
  /** `_syncline_stamps` has a row for it (then it is locked). */
  stored: boolean;
  stampsChanged: boolean;
  wholeStamps: boolean;
  stampedColumns: Set<string>;
  leftToTrigger: boolean;
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
 * Asks the write rules about one row change: `op` as the client pushed it, the row before and
 * after (by SQL name; neither for a delete of a row that never existed) and the row's key.
 * Resolves to the reason it is refused, or undefined.
 *
 * @example
 *   const check: WriteCheck = (table, op, before, after, key) => rules.checkWrite(table, user, op, jsKeys(before), jsKeys(after), jsKeys(key));
 */
export type WriteCheck = (
  table: AnyTable,
  op: WriteOperation,
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown> | undefined,
  key: Record<string, unknown>,
) => Promise<string | undefined>;

/**
 * A stamp `hlc` beats `stamp` when `stamp` is older, or missing (data from before capture). Equal
 * stamps come only from one client transaction, that is one batch: there the later change wins.
 */
function beats(hlc: string, stamp: string | undefined): boolean {
  return stamp === undefined || stamp <= hlc;
}

/** Notes that the batch changed the row's stamps (`whole`: they are written back whole). */
function changedStamps(state: RowState, whole: boolean): void {
  state.stampsChanged = true;
  state.wholeStamps ||= whole;
  state.leftToTrigger = false;
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
 * The row a (re-)creating insert writes and its column stamps: the insert's values, except the
 * columns of the deleted row's image whose stamps are newer than the insert (updates made after
 * it, which won whichever came first); `merged` when there were such columns.
 */
function recreated(
  change: DecodedChange,
  stamps: RowStamps,
): { row: Record<string, unknown>; cols: Record<string, string>; merged: boolean } {
  const row: Record<string, unknown> = { ...change.values, ...change.ref.pk };
  const cols: Record<string, string> = {};
  let merged = false;
  for (const column of change.ref.table.$columnList) {
    const kept = stamps.image ? stamps.cols[column.name] : undefined;
    if (kept !== undefined && kept > change.hlc && Object.hasOwn(stamps.image!, column.name)) {
      row[column.name] = stamps.image![column.name];
      cols[column.name] = kept;
      merged = true;
    } else cols[column.name] = change.hlc;
  }
  return { row, cols, merged };
}

/**
 * Resolves the changes of one batch against the rows' current state and stamps, exactly as the
 * conflict table of docs/sync-internals.md says (last writer wins per column; a tombstone stops
 * older inserts, and an update never revives a row; a delete loses to a newer insert), asks the
 * write rules about every change to a row (whether or not its stamps win), and returns the writes
 * in batch order, or the first refusal. The outcome depends only on the set of changes: an update
 * newer than a tombstone that arrives while the row is deleted is kept in the row's image, and a
 * re-creating insert older than it takes its value. Only `states` is changed; nothing is written.
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
        changedStamps(state, false);
      }
      const set = winners(state, change.values, hlc);
      const won = Object.keys(set).length > 0;
      if (Object.keys(set).length < Object.keys(change.values).length) lost.set(ref.key, ref);
      // The rule sees what is written, or what the change meant when it lost everywhere: whether a
      // change is allowed must not depend on which stamps happen to be newer.
      const after = { ...current, ...(won ? set : change.values) };
      const reason = await check(ref.table, change.op, current, after, ref.pk);
      if (reason) return { writes, reason, lost: [] };
      if (!won) continue;
      writes.push({ kind: 'update', ref, hlc, set });
      state.current = after;
      for (const name of Object.keys(set)) {
        stamps.cols[name] = hlc;
        state.stampedColumns.add(name);
      }
      changedStamps(state, false);
    } else if (change.op === 'insert') {
      const reason = await check(ref.table, 'insert', undefined, { ...change.values, ...ref.pk }, ref.pk);
      if (reason) return { writes, reason, lost: [] };
      // Only the tombstone of a row that existed (it has an image) stops an older insert: one a
      // delete of a missing key left (older servers stored those) would let whoever pushed that
      // delete swallow another user's insert of the key.
      if (stamps.deleted !== undefined && stamps.deleted > hlc && stamps.image !== undefined) {
        lost.set(ref.key, ref);
        continue;
      }
      const { row, cols, merged } = recreated(change, stamps);
      if (merged) lost.set(ref.key, ref);
      writes.push({ kind: 'insert', ref, hlc, row });
      state.current = row;
      state.stamps = { cols, created: hlc, deleted: undefined, image: undefined, updatedInImage: new Set() };
      changedStamps(state, true);
    } else if (change.op === 'delete') {
      const untouched = !state.stampsChanged;
      // A deleted row is asked about as it was deleted (a newer tombstone would stop its owner's
      // re-create); a row that never existed, with neither row (a `writeChange` rule may refuse).
      const reason = await check(ref.table, 'delete', current ?? stamps.image, undefined, ref.pk);
      if (reason) return { writes, reason, lost: [] };
      // Nothing to delete: a tombstone would only stop someone else's insert of the key. So an
      // insert of it older than this delete that arrives later is kept, while the pushing client,
      // until the ack, drops such an insert as beaten by its pending delete: the ack carries the
      // row as the server has it then, which no change may bring the client otherwise.
      if (!current && !stamps.image) {
        lost.set(ref.key, ref);
        continue;
      }
      if (current) {
        if (stamps.created !== undefined && stamps.created > hlc) {
          lost.set(ref.key, ref);
          continue;
        }
        // The capture trigger stores the tombstone and the image (the row as it logs it), as it
        // does for every delete; the batch only writes them again when it changed them otherwise.
        writes.push({ kind: 'delete', ref, hlc });
        state.current = undefined;
        stamps.image = current;
        stamps.updatedInImage = new Set();
      }
      stamps.deleted = later(stamps.deleted, hlc);
      changedStamps(state, true);
      state.leftToTrigger = untouched && current !== undefined;
    } else {
      // An update of a missing row never revives it. When the row was deleted with an image, the
      // update is asked about and resolved against that image, as if it had come before the
      // delete; only one newer than the tombstone can ever show (in a re-created row), so only
      // such an update changes the image.
      lost.set(ref.key, ref);
      const image = stamps.image;
      if (!image || stamps.deleted === undefined) continue;
      const set = winners(state, change.values, hlc);
      const won = Object.keys(set).length > 0;
      const after = { ...image, ...(won ? set : change.values) };
      const reason = await check(ref.table, 'update', image, after, ref.pk);
      if (reason) return { writes, reason, lost: [] };
      if (!won || hlc <= stamps.deleted) continue;
      stamps.image = { ...image, ...set };
      for (const name of Object.keys(set)) {
        stamps.cols[name] = hlc;
        stamps.updatedInImage.add(name);
      }
      changedStamps(state, true);
    }
  }
  return { writes, reason: undefined, lost: [...lost.values()] };
}

/** The tables whose deletes, and those whose updates, change rows of other tables (a foreign key's action). */
interface CascadingTables {
  readonly onDelete: ReadonlySet<string>;
  readonly onUpdate: ReadonlySet<string>;
}

const cascadingTables = new WeakMap<Schema, CascadingTables>();

function cascadingTablesOf(schema: Schema): CascadingTables {
  let found = cascadingTables.get(schema);
  if (found) return found;
  const onDelete = new Set<string>();
  const onUpdate = new Set<string>();
  const acts = (action: ReferenceAction | undefined) =>
    action !== undefined && action !== 'restrict' && action !== 'no action';
  for (const child of schema.tableList) {
    const keys = [
      ...child.$columnList.flatMap((c) =>
        c.references ? [{ ...c.references, parent: (c.references.target() as AnyColumn).table }] : [],
      ),
      ...child.$foreignKeys.map((fk) => ({ ...fk, parent: (fk.target() as readonly AnyColumn[])[0]!.table })),
    ];
    for (const key of keys) {
      if (acts(key.onDelete)) onDelete.add(key.parent.$name);
      if (acts(key.onUpdate)) onUpdate.add(key.parent.$name);
    }
  }
  found = { onDelete, onUpdate };
  cascadingTables.set(schema, found);
  return found;
}

/**
 * The changes of a batch in runs that can be resolved against the rows as they are before the
 * run: a run ends after a change whose write may make a foreign key's action change other rows
 * (a delete of a row other tables reference with ON DELETE CASCADE or SET NULL, an update of one
 * referenced with an ON UPDATE action), so that the changes after it see what the action did (a
 * child re-created after its parent's delete is inserted, not updated). Most batches are one run.
 *
 * @example
 *   for (const run of cascadeRuns(schema, decoded.changes)) await applyRun(run);
 */
export function cascadeRuns(schema: Schema, changes: readonly DecodedChange[]): DecodedChange[][] {
  const runs: DecodedChange[][] = [[]];
  for (const change of changes) {
    const run = runs[runs.length - 1]!;
    run.push(change);
    if (endsRun(schema, change)) runs.push([]);
  }
  return runs.filter((run) => run.length > 0);
}

/**
 * Whether a run ends after `change` (see `cascadeRuns`): its write may make a foreign key's action
 * change rows of other tables, so what follows must be resolved against the rows it left.
 *
 * @example
 *   if (endsRun(schema, batch.changes.at(-1)!)) await flushSegment();
 */
export function endsRun(schema: Schema, change: DecodedChange): boolean {
  const cascading = cascadingTablesOf(schema);
  const tables = change.op === 'delete' ? cascading.onDelete : cascading.onUpdate;
  return tables.has(change.ref.table.$name);
}
