import type { ChangeJson } from '../protocol/messages.js';
import type { TableCodec } from './table-codec.js';

/**
 * One outbox row as read for a push: table, operation, primary key and values as the capture
 * triggers wrote them (JSON text), and the batch's stamp.
 *
 * @example
 *   const row: OutboxRow = { table: 'todos', op: 'update', pk: '{"id":"…"}', row: '{"done":1}', hlc };
 */
export interface OutboxRow {
  readonly table: string;
  readonly op: 'insert' | 'update' | 'delete';
  readonly pk: string;
  readonly row: string | null;
  readonly hlc: string;
}

interface Pending {
  table: string;
  op: OutboxRow['op'];
  pk: string;
  values: Record<string, unknown> | undefined;
}

/**
 * Turns the outbox rows of one batch into the changes of a push: one change per row touched, in
 * the order rows were first touched, values in protocol JSON. The server applies every change of a
 * batch with the batch's one stamp, and a write never overrides one with the same stamp, so the
 * writes of one transaction to one row are folded into one change: insert then updates is an
 * insert of the final row; updates merge; anything then delete is a delete; a delete then an
 * insert is an insert of the new row (per-column update on the server when the row exists).
 *
 * @example
 *   const changes = batchChanges(rows, codecs); // [{ table: 'todos', op: 'insert', pk, values, hlc }]
 */
export function batchChanges(
  rows: readonly OutboxRow[],
  codecs: ReadonlyMap<string, TableCodec>,
): ChangeJson[] {
  const byRow = new Map<string, Pending>();
  for (const row of rows) {
    const id = `${row.table}\u0000${row.pk}`;
    const values = row.row === null ? undefined : (JSON.parse(row.row) as Record<string, unknown>);
    const seen = byRow.get(id);
    if (!seen) {
      byRow.set(id, { table: row.table, op: row.op, pk: row.pk, values });
    } else if (row.op === 'delete') {
      seen.op = 'delete';
      seen.values = undefined;
    } else if (row.op === 'insert') {
      seen.op = 'insert';
      seen.values = values;
    } else if (seen.op !== 'delete') {
      seen.values = { ...seen.values, ...values };
    }
  }
  const hlc = rows[0]?.hlc;
  const changes: ChangeJson[] = [];
  for (const { table, op, pk, values } of byRow.values()) {
    const codec = codecs.get(table);
    // A table that stopped being synced since the write was captured: nothing to send it to.
    if (!codec) continue;
    const change: ChangeJson = { table, op, pk: codec.wireFromOutbox(JSON.parse(pk)), hlc };
    if (op !== 'delete') change.values = codec.wireFromOutbox(values ?? {});
    // An update whose columns all went back is nothing to send.
    if (op === 'update' && Object.keys(change.values!).length === 0) continue;
    changes.push(change);
  }
  return changes;
}
