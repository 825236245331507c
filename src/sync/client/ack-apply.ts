import type { AnyTable } from '../../schema/table.js';
import type { AckMessage, RestoredRowJson, RowsMessage } from '../protocol/messages.js';
import { decodeRow, type JsonRow } from '../protocol/value-codec.js';
import type { ApplyContext } from './apply-context.js';
import { OUTBOX_SEQ, seqOf } from './client-tables.js';
import { clientTransaction, type Run } from './client-transaction.js';
import { deleteBatch } from './outbox-push.js';
import { OUTBOX_KEY_INDEX, PendingWrites } from './pending-writes.js';
import { RowApplyError } from './remote-apply.js';
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
  /** Server rows this database refused (see `writeServerRows`): reported, and fetched again later. */
  readonly failed: readonly RowApplyError[];
  /** Server rows sent without every column (see `writeServerRows`): reported only. */
  readonly incomplete: readonly RowApplyError[];
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
    // The batches just deleted make outboxRows a bound, not the count: still below, still no probe.
    const { tables, failed, incomplete } = await writeServerRows(
      context,
      run,
      ack.results.flatMap(serverRows),
      start!.outboxRows,
    );
    const rejected: RejectedEvent[] = [];
    for (const result of ack.results) {
      if (result.status !== 'rejected') continue;
      rejected.push({
        mutationId: result.mutationId,
        reason: result.reason,
        rows: result.rows.filter((row) => context.codecs.has(row.table)).map((row) => restored(context, row)),
      });
    }
    const firstSeq = seqOf(await run(OUTBOX_SEQ.min.sql, [], { arrayMode: true }));
    // An empty outbox needs no key index; while it is short, local writes skip its upkeep.
    if (firstSeq === undefined) await run(`DROP INDEX IF EXISTS ${OUTBOX_KEY_INDEX}`);
    return { tables, rejected, firstSeq, failed, incomplete };
  });
}

/**
 * What writing the server's versions of rows did: the tables written, and the rows this database
 * refused (each rolled back alone), to report and to fetch again later.
 *
 * @example
 *   const { tables, failed } = await writeServerRows(context, run, message.rows, start.outboxRows);
 */
export interface ServerRowsWritten {
  readonly tables: Set<string>;
  readonly failed: RowApplyError[];
  /** Rows the server sent without every column (values it has no encoding for): not written. */
  readonly incomplete: RowApplyError[];
}

/**
 * Writes the server's version of rows (`row` null: the row is gone for this client), inside a
 * remote transaction, each in a savepoint of its own: a row this database refuses (a unique value
 * a pending local row holds, say) is rolled back alone and reported in `failed`, and the others
 * are written. Columns that pending local batches changed keep their local value, since those
 * batches still go to the server. Used by acks and by the answers to `fetch`.
 *
 * @example
 *   const { tables, failed } = await writeServerRows(context, run, ack.results.flatMap(serverRows), start.outboxRows);
 */
export async function writeServerRows(
  context: ApplyContext,
  run: Run,
  rows: readonly RestoredRowJson[],
  outboxRows: number,
): Promise<ServerRowsWritten> {
  const tables = new Set<string>();
  const failed: RowApplyError[] = [];
  const incomplete: RowApplyError[] = [];
  if (rows.length === 0) return { tables, failed, incomplete };
  const items = rows.map((row) => {
    try {
      const codec = codecFor(context.codecs, row.table);
      const values: unknown[] = new Array(codec.columns.length);
      const carried = codec.storageInto(row.row ? { ...row.row, ...row.pk } : row.pk, values, 0);
      if (row.row && carried < codec.columns.length) {
        // The server left out values it has no encoding for: writing the rest would make a row
        // the server does not have. Reported, not fetched again (it would come the same way).
        const missing = codec.columns.filter((_, i) => values[i] === undefined).map((c) => c.name);
        incomplete.push(
          new RowApplyError(
            row.table,
            row.pk,
            'version',
            new Error(
              `the server could not send ${missing.join(', ')} (a value this client's database cannot hold, such as a real NaN or a timestamp at infinity); the row is left as it is`,
            ),
          ),
        );
        return undefined;
      }
      return { row, codec, values, key: codec.keyIndexes.map((i) => values[i]) };
    } catch (error) {
      failed.push(new RowApplyError(row.table, row.pk, 'version', error));
      return undefined;
    }
  });
  const decoded = items.filter((item) => item !== undefined);
  const pending = await PendingWrites.load(
    run,
    decoded.map(({ codec, key }) => [codec, key] as const),
    outboxRows,
  );
  // Rows refused in one pass are tried again while a pass writes any: restoring two rows that
  // swapped unique values fails for whichever comes first, and succeeds once the other is back.
  let left = decoded;
  let errors = new Map<(typeof decoded)[number], unknown>();
  while (left.length > 0) {
    errors = new Map();
    for (const item of left) {
      const { row, codec, values, key } = item;
      await run('SAVEPOINT syncline_row');
      try {
        const local = pending.get(codec.name, codec.keyOf(key));
        const op = row.row ? 'insert' : 'delete';
        await applyRemoteRow(run, context.writer(codec), codec, local, op, values, undefined);
        await run('RELEASE syncline_row');
        tables.add(codec.name);
      } catch (error) {
        await run('ROLLBACK TO syncline_row');
        await run('RELEASE syncline_row');
        errors.set(item, error);
      }
    }
    if (errors.size === left.length) break;
    left = left.filter((item) => errors.has(item));
  }
  // Rows that refuse each other in a cycle (two that swapped unique values both) are written
  // together: all removed first, then written back, so no unique value is ever held twice.
  if (errors.size > 1) {
    const cycle = [...errors.keys()];
    await run('SAVEPOINT syncline_rows');
    try {
      for (const { codec, key } of cycle) await context.writer(codec).delete(run, key);
      for (const { row, codec, values, key } of cycle) {
        if (!row.row) continue;
        const local = pending.get(codec.name, codec.keyOf(key));
        await applyRemoteRow(run, context.writer(codec), codec, local, 'insert', values, undefined);
      }
      await run('RELEASE syncline_rows');
      for (const { codec } of cycle) tables.add(codec.name);
      errors.clear();
    } catch {
      await run('ROLLBACK TO syncline_rows');
      await run('RELEASE syncline_rows');
    }
  }
  for (const [{ row }, error] of errors) {
    failed.push(new RowApplyError(row.table, row.pk, row.row ? 'version' : 'delete', error));
  }
  return { tables, failed, incomplete };
}

/**
 * Writes the answer to a `fetch` (see `writeServerRows`) in one remote transaction.
 *
 * @example
 *   const { tables, failed } = await applyFetchedRows(context, message);
 */
export function applyFetchedRows(context: ApplyContext, message: RowsMessage): Promise<ServerRowsWritten> {
  return Promise.resolve(
    clientTransaction(context.db, true, (run, start) =>
      writeServerRows(context, run, message.rows, start!.outboxRows),
    ),
  );
}
