import type { DriverResult } from '../../database/driver.js';
import { entityKind } from '../../entity.js';
import { SynclineError, SyncProtocolError } from '../../errors.js';
import type { ChangeJson, ChangesMessage } from '../protocol/messages.js';
import { comparePositions } from '../protocol/messages-position.js';
import type { JsonRow } from '../protocol/value-codec.js';
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
  /**
   * Rows to ask the server for (`fetch`): those whose change this database refused (in `failed`
   * too), and those a change could not create (an insert without every column, an update of a
   * row this client does not hold).
   */
  readonly refetch: readonly RowKey[];
  /** The changes this database refused (applied carefully, each on its own), with the reason. */
  readonly failed: readonly RowApplyError[];
}

/**
 * A row named by its table and primary key in message form (SQL names, encoded values): what a
 * client asks the server for again.
 *
 * @example
 *   const key: RowKey = { table: 'todos', pk: { id: '2f1c…' } };
 */
export interface RowKey {
  readonly table: string;
  readonly pk: JsonRow;
}

/**
 * What the server sent about a row could not be written to this client's database (a constraint of
 * its own broke, a value did not fit): the change was skipped, the rest of its message applied, and
 * the client asks the server for the row's current version. Reported as an `error` event; sync
 * goes on. `table` and `pk` name the row, `cause` is the database's error.
 *
 * @example
 *   sync.on('error', (e) => { if (e instanceof RowApplyError) console.warn(e.table, e.pk, e.cause); });
 */
export class RowApplyError extends SynclineError {
  static override readonly [entityKind]: string = 'RowApplyError';
  constructor(
    readonly table: string,
    readonly pk: JsonRow,
    what: string,
    cause: unknown,
  ) {
    super(
      `could not apply the server's ${what} of ${table} ${JSON.stringify(pk)}: ${(cause as Error)?.message ?? String(cause)}; the row is fetched from the server again and sync goes on`,
      { cause },
    );
  }
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
  careful = false,
): ChangesApplied | Promise<ChangesApplied> {
  // Most messages break no foreign key: they run with the app's enforcement, which spares SQLite
  // expiring every prepared statement; one that does runs again with enforcement off.
  return clientTransaction(
    context.db,
    true,
    (run, start) => applySteps(context, clock, message, adoptStart, careful, run, start!),
    { foreignKeys: careful ? 'off' : 'try-on' },
  );
}

/** The stored cursor, or the message's start when the client may adopt it; undefined for a duplicate. */
function startOf(message: ChangesMessage, adoptStart: boolean, start: RemoteStart): string | undefined {
  const stored = start.cursor;
  const cursor = stored === undefined && adoptStart ? message.from : stored;
  if (cursor === message.from) return cursor;
  if (cursor !== undefined && comparePositions(message.to, cursor) <= 0) return undefined;
  throw new CursorGapError(
    `the server sent changes from position ${message.from}, but this client's cursor is ${cursor ?? '(none: no snapshot applied yet)'}; reconnecting to resume from the cursor`,
  );
}

function duplicate(cursor: string | undefined): ChangesApplied {
  return {
    tables: new Set<string>(),
    cursor: cursor ?? '',
    clockErrors: [],
    skipped: true,
    refetch: [],
    failed: [],
  };
}

/** Merges a change's stamp into the clock; a stamp the clock refuses is reported, not thrown. */
function receiveStamp(clock: ClientClock, hlc: string, clockErrors: Error[]): void {
  try {
    clock.receive(hlc);
  } catch (error) {
    clockErrors.push(error as Error);
  }
}

/**
 * True when the server's whole row is needed after a change (`written` is its statement's result):
 * an insert that did not carry every column (it only filled in what it had), or an update of a row
 * this client lacks.
 */
function missedRow(change: ChangeJson, whole: boolean, written: unknown): boolean {
  if (change.op === 'insert') return !whole;
  return change.op === 'update' && written !== undefined && (written as DriverResult).rowCount === 0;
}

/**
 * A message that failed as a whole, applied again change by change, each in a savepoint of its
 * own, with foreign keys off (rows may come before their parents): a change the database refuses
 * is rolled back alone and reported in `failed`, the rest apply, and the cursor moves past the
 * message, so one bad change never stops a client's sync. The refused rows are fetched again.
 */
function* carefulSteps(
  context: ApplyContext,
  clock: ClientClock,
  message: ChangesMessage,
  run: Run,
  start: RemoteStart,
): Steps<ChangesApplied> {
  const tables = new Set<string>();
  const clockErrors: Error[] = [];
  const refetch: RowKey[] = [];
  const failed: RowApplyError[] = [];
  for (const change of message.changes) {
    receiveStamp(clock, change.hlc, clockErrors);
    const savepoint = run('SAVEPOINT syncline_change');
    if (savepoint instanceof Promise) yield savepoint;
    try {
      const { codec, values, whole } = decodeChange(context, change);
      const key = codec.keyIndexes.map((i) => values[i]);
      const pending = (yield PendingWrites.load(run, [[codec, key]], start.outboxRows)) as PendingWrites;
      const local = pending.get(codec.name, codec.keyOf(key));
      const op = change.op === 'insert' && !whole ? 'update' : change.op;
      let written: unknown = applyRemoteRow(run, context.writer(codec), codec, local, op, values, change.hlc);
      if (written instanceof Promise) written = yield written;
      if (missedRow(change, whole, written)) refetch.push({ table: change.table, pk: change.pk });
      tables.add(codec.name);
      const released = run('RELEASE syncline_change');
      if (released instanceof Promise) yield released;
    } catch (error) {
      // Rolled back to the savepoint: this change left nothing behind.
      const back = run('ROLLBACK TO syncline_change');
      if (back instanceof Promise) yield back;
      const released = run('RELEASE syncline_change');
      if (released instanceof Promise) yield released;
      failed.push(new RowApplyError(change.table, change.pk, change.op, error));
      if (context.codecs.has(change.table)) refetch.push({ table: change.table, pk: change.pk });
    }
  }
  start.newCursor = message.to;
  start.lastHlc = clock.last;
  return { tables, cursor: message.to, clockErrors, skipped: false, refetch, failed };
}

function* applySteps(
  context: ApplyContext,
  clock: ClientClock,
  message: ChangesMessage,
  adoptStart: boolean,
  careful: boolean,
  run: Run,
  start: RemoteStart,
): Steps<ChangesApplied> {
  if (startOf(message, adoptStart, start) === undefined) return duplicate(start.cursor);
  if (careful) return yield* carefulSteps(context, clock, message, run, start);
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
  let refetch: RowKey[] | undefined;
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
      // An insert without every column can only fill in a row this client holds; one it lacks is
      // fetched whole (it would break a NOT NULL column, or hold NULLs the server's row has not).
      const op = change.op === 'insert' && !whole ? 'update' : change.op;
      written = applyRemoteRow(run, writer, codec, local, op, values, change.hlc);
      if (written instanceof Promise) written = yield written;
      if (missedRow(change, whole, written)) (refetch ??= []).push({ table: change.table, pk: change.pk });
    }
    tables.add(codec.name);
    receiveStamp(clock, change.hlc, clockErrors);
  }
  written = batch?.flush(run);
  if (written instanceof Promise) yield written;
  if (failure) throw failure.error;
  // Stored by the statement that switches capture on again (see RemoteStart).
  start.newCursor = message.to;
  start.lastHlc = clock.last;
  return { tables, cursor: message.to, clockErrors, skipped: false, refetch: refetch ?? [], failed: [] };
}
