import { entityKind } from '../../entity.js';
import { SyncProtocolError } from '../../errors.js';
import type { ChangeJson, ChangesMessage } from '../protocol/messages.js';
import { comparePositions } from '../protocol/messages-position.js';
import type { ApplyContext } from './apply-context.js';
import type { ClientClock } from './client-clock.js';
import { clientTransaction, type RemoteStart, type Run } from './client-transaction.js';
import { PendingWrites } from './pending-writes.js';
import { applyRemoteRow } from './remote-row.js';
import type { Steps } from './steps.js';
import type { TableCodec } from './table-codec.js';
import { WholeRowBatch } from './whole-row-batch.js';

/**
 * A `changes` message does not start at the client's cursor: a change between them would be lost
 * (or one repeated), so the connection is dropped and the client reconnects from its cursor.
 *
 * @example
 *   catch (e) { if (e instanceof CursorGapError) reconnect(); }
 */
export class CursorGapError extends SyncProtocolError {
  static override readonly [entityKind]: string = 'CursorGapError';
}

/**
 * What applying one `changes` message did: the tables it wrote (to report to live queries), the
 * new cursor, and the stamps the clock refused to merge (a server clock far ahead), which are
 * reported as errors while the changes still apply. `skipped` is set for a message that held
 * nothing new (a duplicate), which changes nothing.
 *
 * @example
 *   const { tables } = await applyChanges(context, clock, message);
 *   db.notifyTablesChanged([...tables]);
 */
export interface ChangesApplied {
  readonly tables: ReadonlySet<string>;
  readonly cursor: string;
  readonly clockErrors: readonly Error[];
  readonly skipped: boolean;
}

function keyValues(codec: TableCodec, values: readonly unknown[]): unknown[] {
  return codec.keyIndexes.map((i, n) => {
    const value = values[i];
    if (value === undefined || value === null) {
      throw new SyncProtocolError(
        `a change to table "${codec.name}" has no value for its primary key column "${codec.keyColumns[n].name}"`,
      );
    }
    return value;
  });
}

/** Rows per multi-row upsert of a message's inserts: a page of a bulk write (1,000 changes) takes two. */
const INSERTS_PER_STATEMENT = 500;

/**
 * A change with its table's codec, its values in storage form, its key, and whether it carries
 * every column (an insert that does can join a multi-row upsert).
 */
interface Decoded {
  codec: TableCodec;
  values: unknown[];
  key: unknown[];
  whole: boolean;
}

function decodeChange(context: ApplyContext, change: ChangeJson): Decoded {
  const codec = context.codecs.get(change.table);
  if (!codec) {
    throw new SyncProtocolError(
      `the server sent a change to table ${JSON.stringify(change.table)}, which is not a synced table of this client's schema (synced: ${[...context.codecs.keys()].join(', ')}); check both run the same schema version`,
    );
  }
  const values: unknown[] = new Array(codec.columns.length);
  const carried = codec.storageInto(
    change.values ? { ...change.values, ...change.pk } : change.pk,
    values,
    0,
  );
  return { codec, values, key: keyValues(codec, values), whole: carried === codec.columns.length };
}

/**
 * Applies a `changes` message in one transaction with capture off, together with the new cursor
 * (`to`), so a crash never skips nor repeats a change. The message must start at the stored cursor
 * (`from`): one that ends at or before it is a duplicate and is skipped; any other mismatch throws
 * `CursorGapError` with nothing applied. `adoptStart` lets a client without a cursor start at `from`
 * (a client with no shapes gets no snapshot to set one). Each change goes through `applyRemoteRow`, which keeps
 * columns that newer pending local writes changed. Every change's stamp is merged into the clock.
 * The caller reports the returned tables with `db.notifyTablesChanged`. On a synchronous driver it
 * returns the result itself, and throws rather than rejects (see `clientTransaction`).
 *
 * @example
 *   const applied = await applyChanges(context, clock, { type: 'changes', v: 1, from: '0', to: '1', changes });
 */
export function applyChanges(
  context: ApplyContext,
  clock: ClientClock,
  message: ChangesMessage,
  adoptStart = false,
): ChangesApplied | Promise<ChangesApplied> {
  // Most messages break no foreign key: they run with the app's enforcement, which spares SQLite
  // expiring every prepared statement; one that does runs again with enforcement off.
  return clientTransaction(
    context.db,
    true,
    (run, start) => applySteps(context, clock, message, adoptStart, run, start!),
    { foreignKeys: 'try-on' },
  );
}

function* applySteps(
  context: ApplyContext,
  clock: ClientClock,
  message: ChangesMessage,
  adoptStart: boolean,
  run: Run,
  start: RemoteStart,
): Steps<ChangesApplied> {
  const stored = start.cursor;
  const cursor = stored === undefined && adoptStart ? message.from : stored;
  if (cursor !== message.from) {
    if (cursor !== undefined && comparePositions(message.to, cursor) <= 0) {
      return { tables: new Set<string>(), cursor, clockErrors: [], skipped: true };
    }
    throw new CursorGapError(
      `the server sent changes from position ${message.from}, but this client's cursor is ${cursor ?? '(none: no snapshot applied yet)'}; reconnecting to resume from the cursor`,
    );
  }
  // Only promises are yielded (see clientTransaction): on a synchronous driver this never suspends.
  let loaded = PendingWrites.decodeAndLoad(
    run,
    message.changes,
    (change) => decodeChange(context, change),
    start.outboxRows,
  );
  if (loaded instanceof Promise) loaded = (yield loaded) as Awaited<typeof loaded>;
  const { decoded, failure, pending } = loaded;
  const tables = new Set<string>();
  const clockErrors: Error[] = [];
  // Runs of whole-row inserts into one table go into multi-row upserts; anything else first
  // writes the batch, so every row is written in message order.
  let batch: WholeRowBatch | undefined;
  let written: unknown;
  for (let i = 0; i < decoded.length; i++) {
    const { codec, values, key, whole } = decoded[i]!;
    const change = message.changes[i]!;
    const local = pending.empty ? undefined : pending.get(codec.name, codec.keyOf(key));
    const writer = context.writer(codec);
    if (change.op === 'insert' && !local && whole) {
      if (batch?.writer !== writer) {
        written = batch?.flush(run);
        if (written instanceof Promise) yield written;
        // Sized for what is left of the message: a one-insert message gets a one-row batch.
        batch = new WholeRowBatch(writer, values.length, Math.min(INSERTS_PER_STATEMENT, decoded.length - i));
      }
      written = batch.push(run, values);
      if (written instanceof Promise) yield written;
    } else {
      written = batch?.flush(run);
      if (written instanceof Promise) yield written;
      written = applyRemoteRow(run, writer, codec, local, change.op, values, change.hlc);
      if (written instanceof Promise) yield written;
    }
    tables.add(codec.name);
    try {
      clock.receive(change.hlc);
    } catch (error) {
      clockErrors.push(error as Error);
    }
  }
  written = batch?.flush(run);
  if (written instanceof Promise) yield written;
  if (failure) throw failure.error;
  // Stored by the statement that switches capture on again (see RemoteStart).
  start.newCursor = message.to;
  start.lastHlc = clock.last;
  return { tables, cursor: message.to, clockErrors, skipped: false };
}
