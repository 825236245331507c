import type { Database } from '../../database/database.js';
import type { Transaction } from '../../database/transaction.js';
import { is } from '../../entity.js';
import { AuthError, ConstraintError, DatabaseError, InvalidValueError, UsageError } from '../../errors.js';
import type { Schema } from '../../schema/schema.js';
import { sql } from '../../sql/sql.js';
import type { AnyMutators } from '../mutators/define-mutators.js';
import { decodeHlc, type HybridLogicalClock } from '../protocol/hlc.js';
import type { BatchJson } from '../protocol/messages-client.js';
import type { AckResult } from '../protocol/messages-server.js';
import { type DecodedBatch, decodeBatch, type RowRef } from './apply-changes.js';
import { cascadeRuns, type RowState, resolveChanges } from './apply-conflicts.js';
import { decodeMutation, runMutation } from './apply-mutation.js';
import { loadStates, readRestored, runWrites, toPropertyKeys } from './apply-rows.js';
import { applyRunTogether } from './apply-run.js';
import { BatchRejection } from './batch-rejection.js';
import { raiseClockHigh } from './capture.js';
import { announceWriter } from './logical-writer.js';
import type { RuleSet, SyncUser } from './rules.js';
import { stampsJson } from './stamps-json.js';

/**
 * Everything `applyPush` needs about one connection: the server database and schema, the client
 * and user pushing, the rules, and the server's clock (every pushed stamp is merged into it).
 *
 * @example
 *   const ctx: PushContext = { db, schema: appSchema, clientId, user, rules: new RuleSet(appSchema, rules), clock };
 */
export interface PushContext {
  readonly db: Database;
  readonly schema: Schema;
  readonly clientId: string;
  readonly user: SyncUser;
  readonly rules: RuleSet;
  readonly clock: HybridLogicalClock;
  /**
   * Called once the push's batches are settled, before the server's rows the ack carries (of
   * rejected batches, and where changes lost) are read: the server streams every change committed
   * so far here and holds the ack's place behind them, so that the rows are at least as new as
   * every change sent before the ack, and every change sent after it is applied on top of them.
   */
  readonly beforeAck?: () => Promise<unknown>;
  /** The mutators a pushed mutation may name (`createSyncServer({ mutators })`); none without. */
  readonly mutators?: AnyMutators;
}

/**
 * The write rule check `resolveChanges` calls for each change a push makes: the user's rule for
 * the table, on the row before and after, by property keys (both push paths share it).
 *
 * @example
 *   const resolved = await resolveChanges(changes, states, writeRuleCheck(ctx));
 */
export function writeRuleCheck(ctx: PushContext): Parameters<typeof resolveChanges>[2] {
  return (table, op, before, after, key) =>
    ctx.rules.checkWrite(
      table,
      ctx.user,
      op,
      before && toPropertyKeys(table, before),
      after && toPropertyKeys(table, after),
      toPropertyKeys(table, key),
    );
}

/** Another writer created one of the batch's rows (or its stamps) after the batch read it. */
export class RaceLost extends Error {}

/** How often a batch is tried: again after a lost deadlock, serialization conflict or race (see `retryable`). */
export const MAX_ATTEMPTS = 5;

export function run(tx: Transaction, text: string, params: readonly unknown[]) {
  return tx.run({ sql: text, params, arrayMode: false, needsBigInt: false });
}

/**
 * The table a batch's first write updates, '' when it inserts or deletes, as far as its first
 * change tells (an insert of a row that exists is an update: `runWrites` then says so).
 */
export function firstUpdating(batch: BatchJson): string {
  const first = batch.changes[0];
  return first?.op === 'update' ? first.table : '';
}

/** The stamp the batch's writes carry: its mutation's, or its first change's ('' for none). */
export function batchStamp(batch: BatchJson): string {
  return batch.mutation?.hlc ?? batch.changes[0]?.hlc ?? '';
}

/**
 * Locks the client's row (creating it on its first push) and returns its last mutation id. It also
 * drops the rejections the client has moved past, and names the writer for the capture trigger
 * (the stamp, client and batch, the table the first write updates, and the mutator a mutation
 * runs), in the same round trip.
 */
export async function lockClient(
  ctx: PushContext,
  tx: Transaction,
  firstOfPush: number,
  batch: BatchJson,
): Promise<number> {
  const result = await run(
    tx,
    `WITH gone AS (DELETE FROM _syncline_rejections WHERE client_id = $1 AND mutation_id < $3::bigint)
     INSERT INTO _syncline_clients AS c (client_id, last_mutation_id, user_id, updated_at) VALUES ($1, 0, $2, now())
     ON CONFLICT (client_id) DO UPDATE SET updated_at = excluded.updated_at, user_id = coalesce(c.user_id, excluded.user_id)
     RETURNING c.last_mutation_id::text AS last, c.user_id,
       set_config('syncline.hlc', $4, true), set_config('syncline.origin', $1, true),
       set_config('syncline.mutation', $5, true), set_config('syncline.updating', $6, true),
       set_config('syncline.mutator', $7, true)`,
    [
      ctx.clientId,
      ctx.user.userId,
      firstOfPush,
      batchStamp(batch),
      String(batch.mutationId),
      firstUpdating(batch),
      batch.mutation?.name ?? '',
    ],
  );
  await announceWriter(tx, ctx.db);
  const row = result.rows[0] as { last: string; user_id: string | null };
  if (row.user_id !== null && row.user_id !== ctx.user.userId) {
    // Another user's client id: pushing under it would move that client's mutation ids.
    throw new AuthError(anotherUsersClient(ctx.clientId));
  }
  return Number(row.last);
}

/**
 * Names the writer of the statements that follow for the capture trigger: the stamp they are
 * logged with, the table whose rows they update ('' while they insert or delete), the batch they
 * belong to when it changes, and (`rows`) each row's batch and stamp when one statement writes
 * rows of several batches. This and `lockClient` are the only places a push names its writer:
 * `lockClient` names the first one of a transaction and the client (`syncline.origin`, the same
 * for the whole transaction) with the client row's lock, this each later one.
 */
export async function nameWriter(
  tx: Transaction,
  writer: {
    readonly hlc: string;
    readonly updating: string;
    readonly mutation?: number;
    readonly rows?: unknown;
  },
): Promise<void> {
  await run(
    tx,
    `SELECT set_config('syncline.hlc', $1, true), set_config('syncline.updating', $2, true),
            set_config('syncline.writers', $4, true),
            CASE WHEN $3::text IS NULL THEN NULL ELSE set_config('syncline.mutation', $3::text, true) END`,
    [
      writer.hlc,
      writer.updating,
      writer.mutation === undefined ? null : String(writer.mutation),
      writer.rows === undefined ? '' : JSON.stringify(writer.rows),
    ],
  );
  await announceWriter(tx);
}

export async function rejectionOf(
  tx: Transaction,
  clientId: string,
  mutationId: number,
): Promise<string | undefined> {
  const result = await run(
    tx,
    'SELECT reason FROM _syncline_rejections WHERE client_id = $1 AND mutation_id = $2::bigint',
    [clientId, mutationId],
  );
  return (result.rows[0] as { reason: string } | undefined)?.reason;
}

/**
 * Applies one new batch inside `tx`; throws `BatchRejection` (or a database error) to reject it.
 * Returns the rows where some change lost. The batch is resolved and written run by run
 * (`cascadeRuns`): the changes after a write whose foreign-key action changed other rows are
 * resolved against those rows as the action left them.
 */
export async function writeBatch(
  ctx: PushContext,
  tx: Transaction,
  batch: BatchJson,
  decoded: DecodedBatch,
): Promise<RowRef[]> {
  if (decoded.reason) throw new BatchRejection(decoded.reason);
  // Checked, not merged: the server's clock takes a batch's stamps only once the batch commits
  // (mergeCommitted), so a batch a rule refuses cannot move it.
  for (const hlc of new Set(decoded.changes.map((c) => c.hlc))) {
    try {
      ctx.clock.checkDrift(decodeHlc(hlc));
    } catch (error) {
      throw new BatchRejection((error as Error).message);
    }
  }
  const runs = cascadeRuns(ctx.schema, decoded.changes);
  let stamp = batch.changes[0]?.hlc;
  let updating = firstUpdating(batch);
  const lost = new Map<string, RowRef>();
  for (const changes of runs) {
    const touched =
      runs.length === 1 ? decoded.touched : [...new Map(changes.map((c) => [c.ref.key, c.ref])).values()];
    const states = await loadStates(tx, touched);
    const resolved = await resolveChanges(changes, states, writeRuleCheck(ctx));
    if (resolved.reason) throw new BatchRejection(resolved.reason);
    await runWrites(tx, resolved.writes, async (hlc, table) => {
      if (hlc === stamp && table === updating) return;
      stamp = hlc;
      updating = table;
      await nameWriter(tx, { hlc, updating: table });
    });
    await writeStamps(ctx, tx, batch.mutationId, newestStamp(batch), states);
    for (const ref of resolved.lost) lost.set(ref.key, ref);
  }
  return [...lost.values()];
}

/**
 * Writes the stamps of the rows a run of the batch changed, and moves the client's last mutation
 * id to the batch. Stored rows are locked and written as the batch left them: whole, or the
 * batch's columns merged in. A deleted row's image is the one the capture trigger stored when it
 * was deleted (by this batch or before), so it is kept, or cleared once the row exists again. A
 * row that had no stamps is inserted; when its stamps row exists by now, the capture trigger of
 * this very transaction made it (a delete of the row, or a foreign key's action on it: its xmin
 * is this transaction) and it is written like a stored one. Any other writer's counts as a race.
 */
export async function writeStamps(
  ctx: PushContext,
  tx: Transaction,
  mutationId: number,
  newest: string,
  states: ReadonlyMap<string, RowState>,
): Promise<void> {
  const changed = [...states.values()].filter((s) => s.stampsChanged && !s.leftToTrigger);
  const fresh = changed.filter((s) => !s.stored).length;
  const rows = changed.map((s) => ({
    t: s.ref.table.$name,
    k: s.ref.pkJson,
    // A row that stayed: only the columns the batch stamped (see RowState).
    c: s.wholeStamps
      ? stampsJson(s.ref.table, s.stamps)
      : Object.fromEntries([...s.stampedColumns].map((name) => [name, s.stamps.cols[name]!])),
    cr: s.stamps.created ?? null,
    d: s.stamps.deleted ?? null,
    whole: s.wholeStamps,
    imaged: s.stamps.image !== undefined,
    stored: s.stored,
  }));
  const result = await run(
    tx,
    `WITH x AS (
       SELECT * FROM jsonb_to_recordset($3::jsonb)
         AS x(t text, k jsonb, c jsonb, cr text, d text, whole boolean, imaged boolean, stored boolean)),
     changed AS (
       UPDATE _syncline_stamps AS s
          SET cols = CASE WHEN x.whole THEN x.c ELSE s.cols || x.c END, created = x.cr,
              deleted = CASE WHEN x.whole THEN x.d ELSE s.deleted END,
              image = CASE WHEN x.whole AND NOT x.imaged THEN NULL ELSE s.image END
         FROM x
        WHERE s.table_name = x.t AND s.pk = x.k AND (x.stored OR s.xmin = pg_current_xact_id()::xid)
        RETURNING x.stored),
     added AS (
       INSERT INTO _syncline_stamps (table_name, pk, cols, created, deleted)
       SELECT x.t, x.k, x.c, x.cr, x.d FROM x WHERE NOT x.stored
       ON CONFLICT (table_name, pk) DO NOTHING RETURNING 1),
     moved AS (UPDATE _syncline_clients SET last_mutation_id = $2::bigint WHERE client_id = $1),
     clock AS (${raiseClockHigh('$4::text')})
     SELECT (SELECT count(*) FROM added)::int + (SELECT count(*) FROM changed WHERE NOT stored)::int AS fresh`,
    [ctx.clientId, mutationId, JSON.stringify(rows), newest],
  );
  if ((result.rows[0] as { fresh: number }).fresh !== fresh) {
    // Another writer stamped one of this batch's unstamped rows meanwhile: decide again.
    throw new RaceLost(
      `batch ${mutationId}: other writers kept creating its rows while it was applied; push it again`,
    );
  }
}

/**
 * Merges a committed batch's newest stamp into the server's clock, so the stamps the server hands
 * out (welcome's) stay after every write it holds. Never fails the push: the batch is committed,
 * and the stamp passed the drift check moments ago (a wall clock stepping back meanwhile is the
 * server's own trouble, not the client's).
 */
export function mergeCommitted(ctx: PushContext, batch: BatchJson): void {
  const newest = newestStamp(batch);
  if (newest === '') return;
  try {
    ctx.clock.receive(decodeHlc(newest));
  } catch {
    // Left out: the next committed batch or the server's own stamps move the clock on.
  }
}

/** The batch's newest stamp (stamps sort as strings), '' for an empty batch. */
export function newestStamp(batch: BatchJson): string {
  let newest = batch.mutation?.hlc ?? '';
  for (const change of batch.changes) if (change.hlc > newest) newest = change.hlc;
  return newest;
}

/** Why an error rejects the batch (a broken constraint, a value the database refused), or undefined for a failure of the server. */
export function rejectionReason(error: unknown): string | undefined {
  if (error instanceof BatchRejection) return error.message;
  if (is(error, ConstraintError) || is(error, InvalidValueError)) return error.message;
  // SQLSTATE class 22: data exceptions (a value out of range, an invalid input).
  if (is(error, DatabaseError) && error.code?.startsWith('22')) return error.message;
  return undefined;
}

/**
 * Errors after which the batch is tried again: a lost deadlock or serialization conflict, or a
 * race on a row that had no stamps (so it was not locked): an insert that meets a primary key
 * someone else just wrote is, the second time round, an update of that row.
 */
export function retryable(error: unknown): boolean {
  if (error instanceof RaceLost) return true;
  if (is(error, ConstraintError)) return error.kind === 'primaryKey';
  return is(error, DatabaseError) && (error.code === '40P01' || error.code === '40001');
}

/**
 * A batch's outcome, and the rows whose server version the ack carries with it (read once every
 * batch of the push is settled, see `applyPush`): all it touched when rejected, those where its
 * changes lost when applied.
 */
export interface Settled {
  readonly result: AckResult;
  readonly rows: readonly RowRef[] | undefined;
}

export function rejected(batch: BatchJson, decoded: DecodedBatch, reason: string): Settled {
  return {
    result: { mutationId: batch.mutationId, status: 'rejected', reason, rows: [] },
    rows: decoded.touched,
  };
}

/** Records a rejection (after the batch's own transaction rolled back) and answers it. */
async function reject(
  ctx: PushContext,
  batch: BatchJson,
  decoded: DecodedBatch,
  reason: string,
  firstOfPush: number,
): Promise<Settled> {
  return ctx.db.transaction(async (tx) => {
    const last = await lockClient(ctx, tx, firstOfPush, batch);
    if (batch.mutationId <= last) {
      // Another connection of this client settled the batch meanwhile: its outcome stands.
      const earlier = await rejectionOf(tx, ctx.clientId, batch.mutationId);
      if (earlier !== undefined) return rejected(batch, decoded, earlier);
      return { result: { mutationId: batch.mutationId, status: 'applied' }, rows: decoded.touched };
    }
    await run(
      tx,
      `WITH noted AS (INSERT INTO _syncline_rejections (client_id, mutation_id, reason) VALUES ($1, $2::bigint, $3)
                       ON CONFLICT (client_id, mutation_id) DO UPDATE SET reason = excluded.reason)
       UPDATE _syncline_clients SET last_mutation_id = $2::bigint WHERE client_id = $1`,
      [ctx.clientId, batch.mutationId, reason],
    );
    return rejected(batch, decoded, reason);
  });
}

async function applyBatch(ctx: PushContext, batch: BatchJson, firstOfPush: number): Promise<Settled> {
  const decoded = batch.mutation
    ? decodeMutation(ctx.schema, batch.mutation)
    : decodeBatch(ctx.schema, ctx.rules, batch);
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.db
        .transaction(async (tx): Promise<Settled> => {
          const applied: AckResult = { mutationId: batch.mutationId, status: 'applied' };
          const last = await lockClient(ctx, tx, firstOfPush, batch);
          if (batch.mutationId <= last) {
            // Sent again (its ack was lost): answered as it was the first time, nothing written.
            const earlier = await rejectionOf(tx, ctx.clientId, batch.mutationId);
            if (earlier !== undefined) return rejected(batch, decoded, earlier);
            // The first ack may have carried rows that lost: send the server's rows again.
            return { result: applied, rows: decoded.touched.length > 0 ? decoded.touched : undefined };
          }
          if (batch.mutation) {
            // The server's outcome replaces the client's optimistic one: the ack carries every
            // row the client's run wrote (those the server's run wrote reach it as changes too).
            if (decoded.reason) throw new BatchRejection(decoded.reason);
            await runMutation(ctx, tx, batch, batch.mutation);
            return { result: applied, rows: decoded.touched.length > 0 ? decoded.touched : undefined };
          }
          const lost = await writeBatch(ctx, tx, batch, decoded);
          return { result: applied, rows: lost.length > 0 ? lost : undefined };
        })
        .then((settled) => {
          if (settled.result.status === 'applied') mergeCommitted(ctx, batch);
          return settled;
        });
    } catch (error) {
      if (retryable(error) && attempt < MAX_ATTEMPTS) continue;
      const reason = rejectionReason(error);
      if (reason === undefined) throw error;
      return reject(ctx, batch, decoded, reason, firstOfPush);
    }
  }
}

/**
 * The push's batches in the parts they are applied in, in order: each run of row batches together,
 * each mutation alone (its mutator is the app's code, run in a transaction of its own).
 */
function partsOf(batches: readonly BatchJson[]): BatchJson[][] {
  const parts: BatchJson[][] = [];
  let rows: BatchJson[] = [];
  for (const batch of batches) {
    if (!batch.mutation) {
      rows.push(batch);
      continue;
    }
    if (rows.length > 0) parts.push(rows);
    rows = [];
    parts.push([batch]);
  }
  if (rows.length > 0) parts.push(rows);
  return parts;
}

/**
 * Applies a run of row batches in one transaction (`applyRunTogether`), tried again after a lost
 * deadlock or race; when the database refuses the run (a broken constraint: which batch broke it
 * is not known) or a batch must be settled alone, the run's transaction rolls back and its batches
 * are applied one by one, each in a transaction of its own, as `applyBatch` does.
 */
async function applyRun(
  ctx: PushContext,
  batches: readonly BatchJson[],
  firstOfPush: number,
): Promise<Settled[]> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    try {
      const settled = await ctx.db.transaction((tx) => applyRunTogether(ctx, tx, batches, firstOfPush));
      // The clock takes the newest applied stamp: merging each older one too would change nothing.
      let newest: BatchJson | undefined;
      settled.forEach((s, i) => {
        const batch = batches[i]!;
        if (s.result.status !== 'applied') return;
        if (!newest || newestStamp(batch) > newestStamp(newest)) newest = batch;
      });
      if (newest) mergeCommitted(ctx, newest);
      return settled;
    } catch (error) {
      if (is(error, AuthError)) throw error;
      if (!retryable(error)) break;
    }
  }
  const settled: Settled[] = [];
  for (const batch of batches) settled.push(await applyBatch(ctx, batch, firstOfPush));
  return settled;
}

/**
 * Applies the batches of one `push` from one client, in order, and returns one outcome per batch
 * (docs/sync-internals.md): each run of row batches in one PostgreSQL transaction
 * (`applyRunTogether`; one batch per transaction when the database refuses the run), each
 * mutation in one of its own. A batch is applied at
 * most once: one whose mutation id the client already pushed is answered as it was then (applied,
 * or rejected again with the same reason). Conflicts are settled per column by stamp against
 * `_syncline_stamps`; the rows are written with the batch's stamp, client and mutation id set for
 * the capture trigger. A batch that names an unknown table or column, carries a bad value or a
 * stamp too far ahead, is refused by a write rule, or breaks a constraint is rolled back whole,
 * recorded, and answered `rejected` with the reason and the server's version of every row it
 * touched (null where the row is missing or not readable by this user). The rows an ack carries
 * are read after every batch is settled and `beforeAck` has run. Errors of the server
 * itself (a lost connection) are thrown, and the batch is left to be pushed again.
 *
 * @example
 *   const results = await applyPush(ctx, push.batches);
 *   send({ type: 'ack', v: PROTOCOL_VERSION, results });
 */
export async function applyPush(ctx: PushContext, batches: readonly BatchJson[]): Promise<AckResult[]> {
  if (ctx.db.dialect.name !== 'postgres') {
    throw new UsageError(
      'applyPush() runs on the PostgreSQL (or PGlite) server database, after installCapture()',
    );
  }
  const settled: Settled[] = [];
  const firstOfPush = batches[0]?.mutationId ?? 0;
  for (const part of partsOf(batches)) {
    if (part.length === 1) settled.push(await applyBatch(ctx, part[0]!, firstOfPush));
    else settled.push(...(await applyRun(ctx, part, firstOfPush)));
  }
  if (settled.every((s) => s.rows === undefined)) return settled.map((s) => s.result);
  // A rejected batch and changes that lost reach nobody as changes: the client that made them
  // gets the server's rows with the ack. They are read only now, after every change committed so
  // far has been streamed and the ack's place held behind them (beforeAck): read any earlier (in
  // the batch's transaction), they could be older than a change that goes out before the ack,
  // and the client would put the older rows back over it.
  await ctx.beforeAck?.();
  return Promise.all(
    settled.map(async ({ result, rows }) =>
      rows === undefined
        ? result
        : { ...result, rows: await readRestored(ctx.db, rows, ctx.rules, ctx.user) },
    ),
  );
}

/**
 * The last mutation id the server has settled (applied or rejected) for a client, 0 before its
 * first push: what `welcome.lastMutationId` tells the client. With `userId`, a client id that
 * belongs to another user throws `AuthError` instead (a client keeps its id for one user; telling
 * another user its mutation ids would let them pose as it).
 *
 * @example
 *   send({ type: 'welcome', v: 1, lastMutationId: await lastMutationId(db, hello.clientId, user.userId), limits, hlc });
 */
export async function lastMutationId(db: Database, clientId: string, userId?: string): Promise<number> {
  const rows = await db.execute<{ last: string; user_id: string | null }>(
    sql`SELECT last_mutation_id::text AS last, user_id FROM _syncline_clients WHERE client_id = ${clientId}`,
  );
  const owner = rows[0]?.user_id;
  if (userId !== undefined && owner != null && owner !== userId)
    throw new AuthError(anotherUsersClient(clientId));
  return rows.length === 0 ? 0 : Number(rows[0]!.last);
}

/** Why a client id of another user is refused, at the handshake and on a push. */
function anotherUsersClient(clientId: string): string {
  return `the client id ${clientId} belongs to another user; a client keeps its id for one user: make a new client id after signing in as someone else`;
}
