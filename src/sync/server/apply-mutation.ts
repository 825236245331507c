import type { Transaction } from '../../database/transaction.js';
import { is } from '../../entity.js';
import { ConstraintError, DatabaseError, InvalidValueError } from '../../errors.js';
import type { Schema } from '../../schema/schema.js';
import { mutatorNamed, validateMutatorArgs } from '../mutators/define-mutators.js';
import { decodeHlc } from '../protocol/hlc.js';
import type { BatchJson, MutationJson } from '../protocol/messages-client.js';
import { type DecodedBatch, decodeKey, type RowRef, rowRef, tableOf } from './apply-changes.js';
import type { PushContext } from './apply-push.js';
import { BatchRejection } from './batch-rejection.js';
import { raiseClockHigh } from './capture.js';

/** The longest reason a thrown mutator error gives a rejection (it is stored and sent back). */
const MAX_REASON_CHARS = 2_000;

/**
 * The rows a pushed mutation says its optimistic run wrote, checked against the schema like the
 * keys of pushed changes: what the ack sends back the server's version of (read with the user's
 * read rules), whether the server applies the mutation or rejects it. A row it cannot name (an
 * unknown or local table, a bad key) makes `reason`: the mutation is rejected.
 *
 * @example
 *   const { touched, reason } = decodeMutation(appSchema, batch.mutation);
 */
export function decodeMutation(schema: Schema, mutation: MutationJson): DecodedBatch {
  const touched = new Map<string, RowRef>();
  let reason: string | undefined;
  for (const row of mutation.rows) {
    const table = tableOf(schema, row.table);
    let pk: Record<string, unknown> | string;
    try {
      pk = typeof table === 'string' ? table : decodeKey(table, row.pk);
    } catch (error) {
      pk = String((error as Error)?.message ?? error);
    }
    if (typeof table === 'string' || typeof pk === 'string') {
      reason ??= `mutator "${mutation.name}": ${typeof table === 'string' ? table : pk}`;
      continue;
    }
    const ref = rowRef(table, pk);
    if (!touched.has(ref.key)) touched.set(ref.key, ref);
  }
  return { changes: [], touched: [...touched.values()], reason };
}

/** An error of the database (retried, rejected or left to push again as apply-push decides). */
function fromDatabase(error: unknown): boolean {
  return is(error, DatabaseError) || is(error, ConstraintError) || is(error, InvalidValueError);
}

/**
 * Runs a pushed mutation's mutator inside the batch's transaction `tx`, where the client row is
 * locked and the capture trigger told (`syncline.mutator`) to stamp every row the mutator writes
 * with the mutation's stamp, as the client's: so its writes are ordered with the client's other
 * batches (an update the client made after the mutation, stamped later, wins over what the
 * mutator wrote). Write rules are not asked: the mutator is the app's own code, and checks
 * `ctx.user` itself. Throws `BatchRejection` for a mutator the server does not have, arguments
 * its validator refuses, a stamp too far ahead, or any error the mutator throws that is not the
 * database's (its message is the reason); the database's errors go on to apply-push, which
 * retries a deadlock, rejects a broken constraint, and leaves a failure of the server to be
 * pushed again. Moves the client's last mutation id to the batch.
 *
 * @example
 *   await runMutation(ctx, tx, batch, batch.mutation);
 */
export async function runMutation(
  ctx: PushContext,
  tx: Transaction,
  batch: BatchJson,
  mutation: MutationJson,
): Promise<void> {
  const { name } = mutation;
  const definition = mutatorNamed(ctx.mutators, name);
  if (!definition) {
    throw new BatchRejection(
      `unknown mutator "${name}": the server has no mutator of that name (give it in createSyncServer({ mutators }); is the client newer than the server?)`,
    );
  }
  let args: unknown;
  try {
    ctx.clock.checkDrift(decodeHlc(mutation.hlc));
    args = await validateMutatorArgs(name, definition, mutation.args);
  } catch (error) {
    throw new BatchRejection((error as Error).message);
  }
  try {
    await definition.run(tx, args, {
      location: 'server',
      user: ctx.user,
      clientId: ctx.clientId,
      mutationId: batch.mutationId,
    });
  } catch (error) {
    if (fromDatabase(error)) throw error;
    throw new BatchRejection(thrownMessage(error).slice(0, MAX_REASON_CHARS) || `mutator "${name}" failed`);
  }
  await tx.run({
    sql: `WITH moved AS (UPDATE _syncline_clients SET last_mutation_id = $2::bigint WHERE client_id = $1)
          ${raiseClockHigh('$3::text')}`,
    params: [ctx.clientId, batch.mutationId, mutation.hlc],
    arrayMode: false,
    needsBigInt: false,
  });
}

/**
 * What a mutator threw, as text: an Error's message, else the value as a string; a value that
 * cannot become one (no prototype, a toString that throws) must not turn the rejection into a
 * server failure, which the client would push again forever.
 */
function thrownMessage(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : String(error);
  } catch {
    return 'the mutator threw a value that is not an Error and cannot be shown';
  }
}
