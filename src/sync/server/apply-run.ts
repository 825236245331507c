import type { Transaction } from '../../database/transaction.js';
import { decodeHlc } from '../protocol/hlc.js';
import type { BatchJson } from '../protocol/messages-client.js';
import type { AckResult } from '../protocol/messages-server.js';
import { type DecodedBatch, decodeBatch, type RowRef } from './apply-changes.js';
import { cascadeRuns, endsRun, type RowState, type RowWrite, resolveChanges } from './apply-conflicts.js';
import {
  batchStamp,
  firstUpdating,
  lockClient,
  nameWriter,
  newestStamp,
  type PushContext,
  rejected,
  run,
  type Settled,
  writeBatch,
  writeRuleCheck,
  writeStamps,
} from './apply-push.js';
import { loadStates, runBatchWrites } from './apply-rows.js';

/**
 * A run of batches that cannot be settled together (a batch cut by a foreign key's action was
 * refused after its first part was written): the run's transaction rolls back and its batches
 * are applied one by one.
 */
export class RunFallback extends Error {}

/** One new batch of the run: decoded, and why it is refused before anything is read, if it is. */
interface Prepared {
  readonly batch: BatchJson;
  readonly decoded: DecodedBatch;
  readonly reason: string | undefined;
}

/**
 * A stretch of the run resolved against one read of its rows: batches whose changes no foreign
 * key's action follows, or (`alone`) one batch that such an action cuts into runs of its own.
 */
interface Segment {
  readonly items: Prepared[];
  readonly alone: boolean;
}

/**
 * Decodes a batch and checks its stamps. `drift` is true when the run's newest stamp passed the
 * clock's drift check: then every stamp of the run is only checked for its form (reading the wall
 * clock per batch costs more than the rest of a one-row batch's checks on some machines).
 */
function prepare(ctx: PushContext, batch: BatchJson, driftChecked: boolean): Prepared {
  const decoded = decodeBatch(ctx.schema, ctx.rules, batch);
  if (decoded.reason) return { batch, decoded, reason: decoded.reason };
  let stamp = '';
  for (const change of decoded.changes) {
    if (change.hlc === stamp) continue;
    stamp = change.hlc;
    try {
      const hlc = decodeHlc(stamp);
      if (!driftChecked) ctx.clock.checkDrift(hlc);
    } catch (error) {
      return { batch, decoded, reason: (error as Error).message };
    }
  }
  return { batch, decoded, reason: undefined };
}

/** Whether the newest stamp of `batches` is within the clock's drift (so every older one is). */
function newestWithinDrift(ctx: PushContext, batches: readonly BatchJson[]): boolean {
  let newest = '';
  for (const batch of batches) {
    const stamp = newestStamp(batch);
    if (stamp > newest) newest = stamp;
  }
  try {
    ctx.clock.checkDrift(decodeHlc(newest));
    return true;
  } catch {
    return false;
  }
}

/**
 * Cuts the new batches into segments: a segment ends after a change whose write may make a
 * foreign key's action change other rows (`endsRun`), so the batches after it read the rows as the
 * action left them; a batch with such a change before its last one is a segment of its own,
 * applied run by run as `writeBatch` applies it.
 */
function segmentsOf(ctx: PushContext, items: readonly Prepared[]): Segment[] {
  const segments: Segment[] = [];
  let open: Prepared[] = [];
  const close = () => {
    if (open.length > 0) segments.push({ items: open, alone: false });
    open = [];
  };
  for (const item of items) {
    const changes = item.decoded.changes;
    if (!item.reason && cascadeRuns(ctx.schema, changes).length > 1) {
      close();
      segments.push({ items: [item], alone: true });
      continue;
    }
    open.push(item);
    const last = changes[changes.length - 1];
    if (!item.reason && last && endsRun(ctx.schema, last)) close();
  }
  close();
  return segments;
}

/** A copy of a row's state, to put back when the batch resolving it is refused. */
function copyState(state: RowState): RowState {
  const { stamps } = state;
  return {
    ...state,
    current: state.current && { ...state.current },
    stamps: {
      cols: { ...stamps.cols },
      created: stamps.created,
      deleted: stamps.deleted,
      image: stamps.image && { ...stamps.image },
      updatedInImage: new Set(stamps.updatedInImage),
    },
    stampedColumns: new Set(state.stampedColumns),
  };
}

/** What the writer of the transaction's statements is named now (see `nameWriter`). */
interface Writer {
  hlc: string;
  updating: string;
  mutation: number;
  /** The last statement named its rows' writers one by one (`syncline.writers` is set). */
  named: boolean;
}

/**
 * Applies a run of one client's row batches (no mutations) together, inside `tx`, and returns one
 * outcome per batch, in order. This is the fast path of a push: the client row is locked once,
 * the rows of many batches are read in one go (a few statements per table, not per batch), each
 * batch is resolved in memory against the rows as the batches before it left them, the writes
 * follow in batch order, and the stamps of every row the run changed are written in one statement
 * with `_syncline_clients.last_mutation_id` moved past the run. Each batch keeps its own mutation
 * id, stamp (the capture trigger is told each batch's stamp and id before its writes) and
 * outcome: a batch a write rule refuses, or with a change that cannot be decoded or a stamp too
 * far ahead, is rejected alone (its rows' state put back as it was before it) and recorded in the
 * same transaction, while the others apply. A batch already settled (its ack was lost) is answered
 * as it was then. An error of the database (a broken constraint, a deadlock) fails the whole run:
 * the caller rolls back and applies the run's batches one at a time, where each gets its own
 * transaction and its own verdict.
 *
 * @example
 *   const settled = await db.transaction((tx) => applyRunTogether(ctx, tx, batches, firstOfPush));
 */
export async function applyRunTogether(
  ctx: PushContext,
  tx: Transaction,
  batches: readonly BatchJson[],
  firstOfPush: number,
): Promise<Settled[]> {
  const first = batches[0]!;
  const last = await lockClient(ctx, tx, firstOfPush, first);
  const writer: Writer = {
    hlc: batchStamp(first),
    updating: firstUpdating(first),
    mutation: first.mutationId,
    named: false,
  };
  const settled = new Map<number, Settled>();
  const resent = batches.filter((b) => b.mutationId <= last);
  if (resent.length > 0) await answerResent(ctx, tx, resent, settled);
  const news = batches.filter((b) => b.mutationId > last);
  const driftChecked = news.length > 0 && newestWithinDrift(ctx, news);
  const fresh = news.map((b) => prepare(ctx, b, driftChecked));
  const refused: { mutationId: number; reason: string }[] = [];
  for (const segment of segmentsOf(ctx, fresh)) {
    if (segment.alone) {
      const { batch, decoded } = segment.items[0]!;
      await nameBatch(tx, writer, batch);
      let lost: RowRef[];
      try {
        lost = await writeBatch(ctx, tx, batch, decoded);
      } catch (error) {
        // Its first runs may be written already: only a transaction of its own can refuse it.
        throw new RunFallback(`batch ${batch.mutationId} must be settled alone`, { cause: error });
      }
      settled.set(batch.mutationId, applied(batch, lost));
      continue;
    }
    await applySegment(ctx, tx, segment.items, writer, settled, refused);
  }
  if (refused.length > 0) {
    await run(
      tx,
      `WITH noted AS (
         INSERT INTO _syncline_rejections (client_id, mutation_id, reason)
         SELECT $1, x.m, x.r FROM jsonb_to_recordset($2::jsonb) AS x(m bigint, r text)
         ON CONFLICT (client_id, mutation_id) DO UPDATE SET reason = excluded.reason)
       UPDATE _syncline_clients SET last_mutation_id = $3::bigint WHERE client_id = $1`,
      [
        ctx.clientId,
        JSON.stringify(refused.map((r) => ({ m: r.mutationId, r: r.reason }))),
        fresh[fresh.length - 1]!.batch.mutationId,
      ],
    );
  }
  return batches.map((b) => settled.get(b.mutationId)!);
}

function applied(batch: BatchJson, lost: readonly RowRef[]): Settled {
  const result: AckResult = { mutationId: batch.mutationId, status: 'applied' };
  return { result, rows: lost.length > 0 ? lost : undefined };
}

/** Batches sent again after a lost ack: answered as they were the first time, nothing written. */
async function answerResent(
  ctx: PushContext,
  tx: Transaction,
  resent: readonly BatchJson[],
  settled: Map<number, Settled>,
): Promise<void> {
  const result = await run(
    tx,
    `SELECT mutation_id::int AS id, reason FROM _syncline_rejections
      WHERE client_id = $1 AND mutation_id = ANY($2::bigint[])`,
    [ctx.clientId, resent.map((b) => b.mutationId)],
  );
  const reasons = new Map((result.rows as { id: number; reason: string }[]).map((r) => [r.id, r.reason]));
  for (const batch of resent) {
    const decoded = decodeBatch(ctx.schema, ctx.rules, batch);
    const reason = reasons.get(batch.mutationId);
    // The first ack may have carried rows that lost: the server's rows go again.
    settled.set(
      batch.mutationId,
      reason !== undefined ? rejected(batch, decoded, reason) : applied(batch, decoded.touched),
    );
  }
}

/** Tells the capture trigger that the statements that follow write `batch` (when they do not already). */
async function nameBatch(tx: Transaction, writer: Writer, batch: BatchJson): Promise<void> {
  const next = { hlc: batchStamp(batch), updating: firstUpdating(batch), mutation: batch.mutationId };
  const same =
    next.hlc === writer.hlc && next.updating === writer.updating && next.mutation === writer.mutation;
  if (same && !writer.named) return;
  await nameWriter(tx, next);
  Object.assign(writer, next, { named: false });
}

/**
 * Resolves the batches of one segment against one read of the rows they touch, writes what they
 * won in batch order, then the stamps of every row the segment changed.
 */
async function applySegment(
  ctx: PushContext,
  tx: Transaction,
  items: readonly Prepared[],
  writer: Writer,
  settled: Map<number, Settled>,
  refused: { mutationId: number; reason: string }[],
): Promise<void> {
  const touched = new Map<string, RowRef>();
  for (const item of items) {
    if (item.reason) continue;
    for (const ref of item.decoded.touched) touched.set(ref.key, ref);
  }
  const states = touched.size > 0 ? await loadStates(tx, [...touched.values()]) : new Map<string, RowState>();
  const planned: { batch: BatchJson; writes: RowWrite[] }[] = [];
  let newest = '';
  for (const { batch, decoded, reason } of items) {
    let why = reason;
    if (!why) {
      const before = decoded.touched.map((ref) => copyState(states.get(ref.key)!));
      const resolved = await resolveChanges(decoded.changes, states, writeRuleCheck(ctx));
      why = resolved.reason;
      if (!why) {
        planned.push({ batch, writes: resolved.writes });
        settled.set(batch.mutationId, applied(batch, resolved.lost));
        const stamp = newestStamp(batch);
        if (stamp > newest) newest = stamp;
        continue;
      }
      // Refused: its rows are as the batches before it left them.
      for (const state of before) states.set(state.ref.key, state);
    }
    refused.push({ mutationId: batch.mutationId, reason: why });
    settled.set(batch.mutationId, rejected(batch, decoded, why));
  }
  const writes = planned.flatMap(({ batch, writes }) =>
    writes.map((write) => ({ write, mutation: batch.mutationId })),
  );
  await runBatchWrites(tx, writes, async (next) => {
    const same = !next.rows && !writer.named && next.hlc === writer.hlc && next.updating === writer.updating;
    if (same && next.mutation === writer.mutation) return;
    await nameWriter(tx, next);
    Object.assign(writer, {
      hlc: next.hlc,
      updating: next.updating,
      mutation: next.mutation,
      named: !!next.rows,
    });
  });
  await writeStamps(ctx, tx, items[items.length - 1]!.batch.mutationId, newest, states);
}
