import { SyncProtocolError } from '../../errors.js';
import { utf8Length } from '../protocol/message-size.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import type { MessageLimits } from '../protocol/messages-server.js';
import type { ApplyContext } from './apply-context.js';
import { batchChanges, type OutboxRow } from './batch-changes.js';
import type { ClientClock } from './client-clock.js';
import { clientTransaction, type Run } from './client-transaction.js';
import { MUTATION_OP } from './mutation-record.js';
import { assignBatches, readNextMutationId, storeStampState } from './outbox-stamping.js';
import type { RowKey } from './remote-apply.js';
import { WriteTooLargeError } from './write-too-large.js';

/**
 * The next `push` to send: its JSON text and the mutation ids it carries.
 *
 * @example
 *   const push = await readPush(context, clock, welcome.limits);
 *   if (push) socket.send(push.json);
 */
export interface PushPlan {
  readonly json: string;
  readonly mutationIds: readonly number[];
  /**
   * Batches taken out of the outbox in this read because no push could carry them: to report
   * like a server's rejection (and to fetch their rows back from the server).
   */
  readonly refused?: readonly WriteTooLargeError[];
}

const ENVELOPE = `{"type":"push","v":${PROTOCOL_VERSION},"batches":[]}`;

/**
 * Gives the batches from `fromMutationId` on new mutation ids, each cut into parts of at most
 * `maxChanges` rows: the server's limits shrank since they were stamped, or one batch alone is over
 * its message size. A mutation's batch keeps its rows together (the server runs the mutator, not
 * the rows). New ids are above every id given so far, so the order of batches stays.
 */
async function recut(
  run: Run,
  clock: ClientClock,
  fromMutationId: number,
  maxChanges: number,
): Promise<void> {
  const { rows } = await run(
    `SELECT o.seq, o.wall_ms, b.mutation_id, o.op FROM _syncline_batches AS b
       JOIN _syncline_outbox AS o ON o.seq BETWEEN b.first_seq AND b.last_seq
     WHERE b.mutation_id >= ? ORDER BY o.seq`,
    [fromMutationId],
    { arrayMode: true },
  );
  await run('DELETE FROM _syncline_batches WHERE mutation_id >= ?', [fromMutationId]);
  let next = await readNextMutationId(run);
  let group: [number, number][] = [];
  let groupId: unknown;
  let whole = false;
  const flush = async () => {
    const most = whole ? group.length : maxChanges;
    if (group.length > 0) next += (await assignBatches(run, clock, group, next, most)).length;
    group = [];
  };
  for (const [seq, wall, id, op] of rows as [number, number, number, string][]) {
    if (id !== groupId) {
      await flush();
      whole = op === MUTATION_OP;
    }
    groupId = id;
    group.push([seq, wall]);
  }
  await flush();
  await storeStampState(run, clock, next);
}

/**
 * Deletes one batch: its outbox rows (a range of seqs, read by the rowid) and its row in
 * `_syncline_batches`.
 *
 * @example
 *   await deleteBatch(run, 7);
 */
export async function deleteBatch(run: Run, mutationId: number): Promise<void> {
  await run(
    `DELETE FROM _syncline_outbox WHERE seq BETWEEN
       (SELECT first_seq FROM _syncline_batches WHERE mutation_id = ?) AND
       (SELECT last_seq FROM _syncline_batches WHERE mutation_id = ?)`,
    [mutationId, mutationId],
  );
  await run('DELETE FROM _syncline_batches WHERE mutation_id = ?', [mutationId]);
}

/**
 * Reads the next push from the start of the outbox, in one transaction: the stamped batches in
 * order, as many as the server's `limits` allow (`maxBatches`, `maxMessageBytes`), each folded by
 * `batchChanges`. A batch of more rows than `maxChangesPerBatch`, or one that alone is over
 * `maxMessageBytes`, is first re-cut into smaller batches with new ids (so a local transaction may
 * reach the server as several batches). Returns undefined when nothing is stamped.
 *
 * A batch that is a single change over `maxMessageBytes` can never be pushed: it is deleted from
 * the outbox with the read (committed), so one oversized write never holds the others back, and
 * comes back as a `WriteTooLargeError` naming the batch and its rows, for the caller to treat as
 * a rejection (report it, fetch the rows back from the server): in the plan's `refused`, or
 * thrown when nothing else is left to push.
 *
 * @example
 *   const push = await readPush(context, clock, limits);
 */
export async function readPush(
  context: ApplyContext,
  clock: ClientClock,
  limits: MessageLimits,
): Promise<PushPlan | undefined> {
  const { push, refused } = await clientTransaction(context.db, false, async (run) => {
    const refused: WriteTooLargeError[] = [];
    // A batch's rows are its whole seq range (seqs are consecutive within a transaction).
    const { rows: oversized } = await run(
      `SELECT b.mutation_id FROM _syncline_batches AS b WHERE b.last_seq - b.first_seq + 1 > ?
         AND NOT EXISTS (SELECT 1 FROM _syncline_outbox AS o WHERE o.seq = b.first_seq AND o.op = '${MUTATION_OP}')
       ORDER BY b.mutation_id LIMIT 1`,
      [limits.maxChangesPerBatch],
      { arrayMode: true },
    );
    if (oversized.length > 0) {
      await recut(run, clock, Number((oversized[0] as unknown[])[0]), limits.maxChangesPerBatch);
    }
    // Each round either returns, drops an unsendable batch, or halves an oversized one: bounded.
    for (let round = 0; round < 64; round++) {
      const plan = await planPush(run, context, limits);
      if (plan.kind === 'ready') return { push: plan.push, refused };
      if (plan.kind === 'unsendable') {
        // Dropped with the transaction's commit, and reported after it.
        await deleteBatch(run, plan.mutationId);
        refused.push(
          plan.error ??
            new WriteTooLargeError(plan.mutationId, plan.rows, plan.bytes, limits.maxMessageBytes),
        );
      } else if (plan.kind === 'empty') {
        await deleteBatch(run, plan.mutationId);
      } else {
        await recut(run, clock, plan.mutationId, Math.ceil(plan.rows / 2));
      }
    }
    throw new SyncProtocolError('the outbox could not be cut into pushes that fit the server limits');
  });
  if (refused.length === 0) return push;
  if (push) return { ...push, refused };
  throw refused[0]!;
}

type Plan =
  | { kind: 'ready'; push: PushPlan | undefined }
  | { kind: 'empty'; mutationId: number }
  | { kind: 'too large'; mutationId: number; rows: number }
  | { kind: 'unsendable'; mutationId: number; rows: RowKey[]; bytes: number; error?: WriteTooLargeError };

async function planPush(run: Run, context: ApplyContext, limits: MessageLimits): Promise<Plan> {
  const { rows: heads } = await run(
    'SELECT mutation_id, first_seq, last_seq, hlc FROM _syncline_batches ORDER BY mutation_id LIMIT ?',
    [limits.maxBatches],
    { arrayMode: true },
  );
  if (heads.length === 0) return { kind: 'ready', push: undefined };
  const ranges = heads as [number, number, number, string][];
  const { rows } = await run(
    'SELECT seq, table_name, op, pk, "row" FROM _syncline_outbox WHERE seq BETWEEN ? AND ? ORDER BY seq',
    [ranges[0][1], ranges[ranges.length - 1][2]],
    { arrayMode: true },
  );
  const batches = new Map<number, OutboxRow[]>();
  let at = 0;
  for (const [id, firstSeq, lastSeq, hlc] of ranges) {
    const batch: OutboxRow[] = [];
    batches.set(id, batch);
    for (; at < rows.length; at++) {
      const [seq, table, op, pk, row] = rows[at] as [number, string, OutboxRow['op'], string, string | null];
      if (seq > lastSeq) break;
      if (seq >= firstSeq) batch.push({ table, op, pk, row, hlc });
    }
  }
  const parts: string[] = [];
  const mutationIds: number[] = [];
  let bytes = ENVELOPE.length;
  for (const [mutationId, batchRows] of batches) {
    // A mutation's opening row: an op no captured write has.
    if ((batchRows[0]?.op as string | undefined) === MUTATION_OP) {
      const mutation = mutationBatch(mutationId, batchRows, context);
      const size = utf8Length(mutation.json) + (parts.length > 0 ? 1 : 0);
      const fits =
        bytes + size <= limits.maxMessageBytes && mutation.rows.length <= limits.maxChangesPerBatch;
      if (!fits && parts.length > 0) break;
      if (!fits) {
        const error = new WriteTooLargeError(
          mutationId,
          mutation.rows,
          size,
          limits.maxMessageBytes,
          mutation.tooLarge,
        );
        return { kind: 'unsendable', mutationId, rows: mutation.rows, bytes: size, error };
      }
      bytes += size;
      parts.push(mutation.json);
      mutationIds.push(mutationId);
      continue;
    }
    const changes = batchChanges(batchRows, context.codecs);
    if (changes.length === 0) return { kind: 'empty', mutationId };
    const json = JSON.stringify({ mutationId, changes });
    const size = utf8Length(json) + (parts.length > 0 ? 1 : 0);
    if (bytes + size > limits.maxMessageBytes) {
      if (parts.length > 0) break;
      if (batchRows.length > 1) return { kind: 'too large', mutationId, rows: batchRows.length };
      const rows = changes.map((change) => ({ table: change.table, pk: change.pk }));
      return { kind: 'unsendable', mutationId, rows, bytes: size };
    }
    bytes += size;
    parts.push(json);
    mutationIds.push(mutationId);
  }
  const json = `{"type":"push","v":${PROTOCOL_VERSION},"batches":[${parts.join(',')}]}`;
  return { kind: 'ready', push: { json, mutationIds } };
}

/**
 * A mutation's batch as pushed: its opening row's name and arguments, its stamp, and the rows its
 * optimistic run wrote (each once, by table and key, in the server's JSON form), whose server
 * version the ack brings back. `tooLarge` says why, should it not fit a push.
 */
function mutationBatch(
  mutationId: number,
  batchRows: readonly OutboxRow[],
  context: ApplyContext,
): { json: string; rows: RowKey[]; tooLarge: string } {
  const [opening, ...written] = batchRows;
  const { name, args } = JSON.parse(opening!.row!) as { name: string; args?: unknown };
  const rows = new Map<string, RowKey>();
  for (const row of written) {
    const codec = context.codecs.get(row.table);
    // A table that stopped being synced since the write was captured: nothing to bring back.
    if (codec && !rows.has(`${row.table}\u0000${row.pk}`))
      rows.set(`${row.table}\u0000${row.pk}`, {
        table: row.table,
        pk: codec.wireFromOutbox(JSON.parse(row.pk)),
      });
  }
  const mutation = {
    name,
    ...(args === undefined ? {} : { args }),
    hlc: opening!.hlc,
    rows: [...rows.values()],
  };
  const json = JSON.stringify({ mutationId, changes: [], mutation });
  const tooLarge = `the mutation ${name} (batch ${mutationId}) takes ${utf8Length(json)} bytes and names ${rows.size} rows its local run wrote, over what one push may carry (the server's maxMessageBytes and maxChangesPerBatch), so it was never sent; its rows are fetched back from the server: pass smaller arguments, or have the mutator write fewer rows`;
  return { json, rows: [...rows.values()], tooLarge };
}
