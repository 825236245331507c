import type { DriverResult, MaybePromise } from '../../database/driver.js';
import type { Run } from './client-transaction.js';
import { type PendingRow, pendingWins } from './pending-writes.js';
import type { RowWriter } from './row-writer.js';
import type { TableCodec } from './table-codec.js';

/**
 * The columns (positions in the codec's columns) whose pending local write beats a server write
 * stamped `stamp`, or undefined when none does.
 */
function keptColumns(
  codec: TableCodec,
  pending: PendingRow,
  stamp: string | undefined,
): Set<number> | undefined {
  let keep: Set<number> | undefined;
  for (const [name, local] of pending.columns) {
    if (!pendingWins(local, stamp)) continue;
    const i = codec.columnIndex(name);
    if (i !== undefined) (keep ??= new Set()).add(i);
  }
  return keep;
}

/**
 * Applies one server write to one local row, keeping what pending local writes decided
 * (docs/sync-internals.md, "Applying a remote change"): a column whose pending write is newer than
 * `stamp` (or not stamped yet) keeps its local value; an insert or update does not bring back a row
 * a newer pending delete removed; a delete always applies unless a pending insert of the row is
 * newer. An insert is an upsert, an update of a missing row does nothing, a delete of a missing row
 * does nothing. `values` are storage values aligned with the codec's columns (the whole row for an
 * insert, the changed columns and the key for an update, the key for a delete). Returns the
 * statement's result, or undefined when nothing had to run.
 *
 * @example
 *   applyRemoteRow(run, writer, codec, pending.get('todos', key), 'update', values, change.hlc);
 */
export function applyRemoteRow(
  run: Run,
  writer: RowWriter,
  codec: TableCodec,
  pending: PendingRow | undefined,
  op: 'insert' | 'update' | 'delete',
  values: readonly unknown[],
  stamp: string | undefined,
): MaybePromise<DriverResult> | undefined {
  if (op === 'delete') {
    if (pending && pendingWins(pending.insert, stamp) && pending.lastOp !== 'delete') return undefined;
    return writer.delete(
      run,
      codec.keyIndexes.map((i) => values[i]),
    );
  }
  if (pending?.lastOp === 'delete' && pendingWins(pending.delete, stamp)) return undefined;
  const keep = pending ? keptColumns(codec, pending, stamp) : undefined;
  if (op !== 'insert') return writer.update(run, values, keep);
  if (!keep) return writer.upsert(run, values, keep);
  // The row may be gone locally (a remote parent delete cascaded to it): created again, it takes
  // the local values of the columns its pending writes keep, not the server's older ones.
  const local = values.slice();
  for (const i of keep) {
    const name = codec.columns[i].name;
    if (pending!.values.has(name)) local[i] = codec.storageFromOutbox(i, pending!.values.get(name));
  }
  return writer.upsert(run, local, keep);
}
