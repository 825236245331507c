import type { AnyTable } from '../../schema/table.js';
import type { AckMessage, RestoredRowJson } from '../protocol/messages.js';
import { decodeRow, type JsonRow } from '../protocol/value-codec.js';
import type { ApplyContext } from './apply-context.js';
import { OUTBOX_SEQ, seqOf } from './client-tables.js';
import { clientTransaction } from './client-transaction.js';
import { deleteBatch } from './outbox-push.js';
import { OUTBOX_KEY_INDEX, PendingWrites } from './pending-writes.js';
import { applyRemoteRow } from './remote-row.js';
import { codecFor } from './table-codec.js';

/**
 * A row of a rejected batch as the server has it, with app values keyed by the table's property
 * names (`listId`, as in `typeof todos.$inferSelect`): `row` is null when the row does not exist
 * for this client, and was deleted locally.
 *
 * @example
 *   for (const r of event.rows) if (r.table === 'todos' && r.row) show(r.row.title);
 */
export interface RestoredRow {
  readonly table: string;
  readonly pk: Record<string, unknown>;
  readonly row: Record<string, unknown> | null;
}

/**
 * The payload of the `rejected` event: a local transaction (batch) the server refused, why, and
 * the rows written back locally to the server's version.
 *
 * @example
 *   sync.on('rejected', ({ mutationId, reason, rows }) => toast(`not saved: ${reason}`));
 */
export interface RejectedEvent {
  readonly mutationId: number;
  readonly reason: string;
  readonly rows: readonly RestoredRow[];
}

/**
 * What an `ack` did locally: the tables rolled back (to report), the rejections (to emit), and the
 * first seq left in the outbox (undefined when it is empty), which tells `flush()` callers whether
 * the rows they wait for are all acknowledged.
 *
 * @example
 *   const { rejected } = await applyAck(context, ack);
 */
export interface AckApplied {
  readonly tables: ReadonlySet<string>;
  readonly rejected: readonly RejectedEvent[];
  readonly firstSeq: number | undefined;
}

function byKeys(table: AnyTable, json: JsonRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(decodeRow(table, json))) {
    out[table.$columnBySqlName(name)?.key ?? name] = value;
  }
  return out;
}

function restored(context: ApplyContext, row: RestoredRowJson): RestoredRow {
  const { table } = codecFor(context.codecs, row.table);
  return { table: row.table, pk: byKeys(table, row.pk), row: row.row ? byKeys(table, row.row) : null };
}

/**
 * The server's rows an ack result carries: those a rejected batch touched, or those where an
 * applied batch's changes lost to newer stamps (no change brings those back).
 */
function serverRows(result: AckMessage['results'][number]): readonly RestoredRowJson[] {
  return result.status === 'rejected' ? result.rows : (result.rows ?? []);
}

/**
 * Settles the outbox after an `ack`, in one transaction with capture off: each acknowledged batch
 * (applied or rejected) leaves the outbox; the rows of a rejected batch, and those where an applied
 * batch lost to newer stamps, are written back to the server's version (`row` null deletes the local row), except columns that later pending batches
 * changed, which keep their local value since those batches still go to the server.
 *
 * @example
 *   const { tables, rejected } = await applyAck(context, ack);
 *   db.notifyTablesChanged([...tables]);
 */
export async function applyAck(context: ApplyContext, ack: AckMessage): Promise<AckApplied> {
  return clientTransaction(context.db, true, async (run, start) => {
    for (const result of ack.results) {
      await deleteBatch(run, result.mutationId);
    }
    const { decoded, failure, pending } = await PendingWrites.decodeAndLoad(
      run,
      ack.results.flatMap(serverRows),
      (row) => {
        const codec = codecFor(context.codecs, row.table);
        const values = codec.storageRow(row.row ? { ...row.row, ...row.pk } : row.pk);
        return { codec, values, key: codec.keyIndexes.map((i) => values[i]) };
      },
      // The batches just deleted make it a bound, not the count: still below, still no probe.
      start!.outboxRows,
    );
    const tables = new Set<string>();
    const rejected: RejectedEvent[] = [];
    let next = 0;
    for (const result of ack.results) {
      for (const row of serverRows(result)) {
        if (next === decoded.length) throw failure?.error;
        const { codec, values, key } = decoded[next++];
        const local = pending.get(codec.name, codec.keyOf(key));
        const op = row.row ? 'insert' : 'delete';
        await applyRemoteRow(run, context.writer(codec), codec, local, op, values, undefined);
        tables.add(codec.name);
      }
      if (result.status !== 'rejected') continue;
      rejected.push({
        mutationId: result.mutationId,
        reason: result.reason,
        rows: result.rows.map((row) => restored(context, row)),
      });
    }
    const firstSeq = seqOf(await run(OUTBOX_SEQ.min.sql, [], { arrayMode: true }));
    // An empty outbox needs no key index; while it is short, local writes skip its upkeep.
    if (firstSeq === undefined) await run(`DROP INDEX IF EXISTS ${OUTBOX_KEY_INDEX}`);
    return { tables, rejected, firstSeq };
  });
}
