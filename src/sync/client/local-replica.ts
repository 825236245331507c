import type { Database } from '../../database/database.js';
import type { DriverResult } from '../../database/driver.js';
import { randomUuid } from '../../random-uuid.js';
import { type ClientColumns, clientColumns } from '../protocol/client-columns.js';
import type {
  AckMessage,
  ChangesMessage,
  RowsMessage,
  ShapeJson,
  WelcomeMessage,
} from '../protocol/messages.js';
import { DEFAULT_MESSAGE_LIMITS } from '../protocol/messages.js';
import type { MessageLimits } from '../protocol/messages-server.js';
import { type AckApplied, applyAck, applyFetchedRows, type ServerRowsWritten } from './ack-apply.js';
import { ApplyContext } from './apply-context.js';
import { ClientClock } from './client-clock.js';
import { readClientState, STATE_KEYS, writeState } from './client-state.js';
import { installClientTables, OUTBOX_SEQ, seqOf, syncedTables } from './client-tables.js';
import { clientTransaction, type Run } from './client-transaction.js';
import { type PushPlan, readPush } from './outbox-push.js';
import { andThen, readNextMutationId, stampOutbox } from './outbox-stamping.js';
import { outboxBackfillSql } from './outbox-triggers.js';
import { applyChanges, type ChangesApplied, type RowKey } from './remote-apply.js';
import { deleteUnlessPending, keysOnlyIn } from './shape-prune.js';
import { SnapshotApplier } from './snapshot-apply.js';

/** How many unresolved rows a client remembers. */
const MAX_UNRESOLVED = 10_000;

/** One string per row: its table and its key as the server sent it. */
function rowKeyId(row: RowKey): string {
  return JSON.stringify([row.table, row.pk]);
}

/**
 * The client's local half of sync, with no network: its tables and triggers, its id, clock and
 * cursor, stamping the outbox, reading pushes, and applying what the server sends (snapshot
 * chunks, changes, acks). Every step is one SQLite transaction through the Database's driver. The
 * sync client drives it from a WebSocket; tests drive it with messages they build.
 *
 * @example
 *   const replica = new LocalReplica(db);
 *   await replica.open();
 *   await replica.stamp();
 *   const push = await replica.readPush(DEFAULT_MESSAGE_LIMITS);
 */
export class LocalReplica {
  readonly context: ApplyContext;
  private state: { clientId: string; clock: ClientClock } | undefined;
  /** The position of the last server change applied (undefined before the first snapshot). */
  cursor: string | undefined;
  /** The key of the shapes the cursor belongs to (before held shapes were stored). */
  shapesKey: string | undefined;
  /** The shapes the rows and the cursor stand for, as stored (undefined before any was). */
  heldShapes: readonly ShapeJson[] | undefined;
  /**
   * Rows whose server version this client could not write yet (its database refused it, or a
   * change could not create it), by `rowKeyId`: fetched from the server again after each ack and
   * each welcome, until one is written.
   */
  readonly unresolved = new Map<string, RowKey>();
  /** The server's batch size limit from the last welcome (or the protocol default). */
  maxChangesPerBatch: number = DEFAULT_MESSAGE_LIMITS.maxChangesPerBatch;
  /** The outbox's last seq after each local commit heard and not stamped yet, ascending. */
  private readonly commitEnds: number[] = [];
  private keeping: Promise<void> = Promise.resolve();
  /** Reads of `commitEnds` that had to wait for the connection (asynchronous drivers). */
  private noting: Promise<void> = Promise.resolve();

  constructor(readonly db: Database) {
    this.context = new ApplyContext(db);
  }

  /** The client id (a uuid made on the first open and kept in `_syncline_state`). */
  get clientId(): string {
    return this.opened.clientId;
  }

  get clock(): ClientClock {
    return this.opened.clock;
  }

  private get opened(): { clientId: string; clock: ClientClock } {
    if (!this.state) throw new Error('LocalReplica: call open() first');
    return this.state;
  }

  /** Whether `open()` has loaded the state. */
  get isOpen(): boolean {
    return this.state !== undefined;
  }

  /**
   * Installs (idempotently) the client tables and capture triggers, and loads the state: the
   * client id (made now on the first run), the cursor, and the last stamp, merged into the clock
   * so stamps keep growing across restarts. On the first run (no client id yet, so the triggers
   * were just created) the rows the synced tables already hold go into the outbox as inserts:
   * they were written before anything captured them, and the user expects them to sync.
   */
  async open(): Promise<void> {
    const schema = this.db.schema;
    this.state = await clientTransaction(this.db, false, async (run) => {
      await installClientTables(run, schema);
      const stored = await readClientState(run);
      const clientId = stored.clientId ?? randomUuid();
      if (stored.clientId === undefined) {
        await writeState(run, STATE_KEYS.clientId, clientId);
        for (const table of syncedTables(schema)) await run(outboxBackfillSql(table));
      }
      const clock = new ClientClock(clientId);
      if (stored.lastHlc !== undefined) clock.receive(stored.lastHlc);
      this.cursor = stored.cursor;
      this.shapesKey = stored.shapesKey;
      this.heldShapes =
        stored.heldShapes === undefined ? undefined : (JSON.parse(stored.heldShapes) as ShapeJson[]);
      await this.noteColumns(run, stored.syncedColumns);
      this.maxChangesPerBatch = stored.maxChangesPerBatch ?? this.maxChangesPerBatch;
      this.unresolved.clear();
      for (const row of JSON.parse(stored.unresolved ?? '[]') as RowKey[])
        this.unresolved.set(rowKeyId(row), row);
      return { clientId, clock };
    });
  }

  /**
   * After an app update that gave synced tables new columns, the rows held have no values for
   * them yet: the shapes of those tables stop counting as held, so the next connection snapshots
   * them alone (as shapes added at runtime are), and every other shape resumes from the cursor.
   * A table new to the app has no shape held yet, so it is snapshotted anyway.
   */
  private async noteColumns(run: Run, stored: string | undefined): Promise<void> {
    const now = clientColumns(syncedTables(this.db.schema));
    const text = JSON.stringify(now);
    if (stored === text) return;
    if (stored !== undefined && this.heldShapes) {
      const before = JSON.parse(stored) as ClientColumns;
      const grown = new Set(
        Object.keys(now).filter((table) => {
          const had = before[table];
          return had !== undefined && Object.keys(now[table]!).some((column) => !(column in had));
        }),
      );
      if (grown.size > 0) {
        this.heldShapes = this.heldShapes.filter((shape) => !grown.has(shape.table));
        await writeState(run, STATE_KEYS.heldShapes, JSON.stringify(this.heldShapes));
      }
    }
    await writeState(run, STATE_KEYS.syncedColumns, text);
  }

  /**
   * Records where a local commit that was just heard ends in the outbox (its last seq), so that a
   * later stamping pass gives that transaction a mutation id of its own, however many commits it
   * covers. Called right after the commit: with a synchronous driver and the connection free the
   * read runs at once; otherwise it waits its turn for the connection, ahead of any stamping pass
   * started after it (`stamp` waits for it). `db.transaction()` reports its commit while it still
   * holds the connection, so its read waits behind any transaction already queued for it: two
   * transactions queued back to back can then share one mutation id (as one batch, applied whole).
   */
  noteCommit(): void {
    const read = this.db.driver.query(OUTBOX_SEQ.max);
    if (read instanceof Promise) {
      const noted = read.then(
        (result) => this.addEnd(result),
        () => {},
      );
      this.noting = this.noting.then(() => noted);
    } else {
      this.addEnd(read);
    }
  }

  private addEnd(result: DriverResult): void {
    const end = seqOf(result);
    if (end === undefined) return;
    const last = this.commitEnds[this.commitEnds.length - 1];
    if (last === undefined || end > last) this.commitEnds.push(end);
  }

  /**
   * Stamps the outbox rows written since the last pass (see `stampOutbox`), one mutation per local
   * commit noted (`noteCommit`); returns the new ids. The pass holds the connection, so no commit
   * lands while it runs: once it has read the outbox, every end noted so far is stamped or stale
   * (an empty commit, rows acknowledged since), and all are dropped there, before the connection
   * is given back (a stale end would cut a later transaction apart once the outbox's seqs start
   * again from 1).
   */
  async stamp(): Promise<readonly number[]> {
    await this.noting;
    const { mutationIds } = await clientTransaction(this.db, false, (run) =>
      andThen(stampOutbox(run, this.clock, this.maxChangesPerBatch, this.commitEnds), (result) => {
        this.commitEnds.length = 0;
        return result;
      }),
    );
    return mutationIds;
  }

  /**
   * The ends of the local commits noted and not stamped yet (see `noteCommit`), once every note
   * under way is read: for a transaction that stamps the outbox itself (`recordMutation`).
   */
  async notedEnds(): Promise<readonly number[]> {
    await this.noting;
    return [...this.commitEnds];
  }

  /**
   * Takes in a `welcome`: merges the server's clock, keeps the server's batch limit, and moves the
   * next mutation id past the last one the server applied (a client restored from an old copy
   * must not reuse ids the server has seen). A server clock too far ahead to merge is returned as
   * an error to report (sync goes on; local writes may then lose to older server writes).
   */
  async welcome(welcome: WelcomeMessage): Promise<Error | undefined> {
    let clockError: Error | undefined;
    try {
      if (welcome.hlc !== undefined) this.clock.receive(welcome.hlc);
    } catch (error) {
      clockError = error as Error;
    }
    this.maxChangesPerBatch = welcome.limits.maxChangesPerBatch;
    await clientTransaction(this.db, false, async (run) => {
      const next = await readNextMutationId(run);
      if (next <= welcome.lastMutationId)
        await writeState(run, STATE_KEYS.nextMutationId, welcome.lastMutationId + 1);
      await writeState(run, STATE_KEYS.maxChangesPerBatch, welcome.limits.maxChangesPerBatch);
      const last = this.clock.last;
      if (last !== undefined) await writeState(run, STATE_KEYS.lastHlc, last);
    });
    return clockError;
  }

  /** The cursor to send in a hello for these shapes: only when it was stored with the same shapes. */
  cursorFor(shapesKey: string): string | undefined {
    return this.shapesKey === shapesKey ? this.cursor : undefined;
  }

  /**
   * The shapes this database holds the rows of, up to its cursor: those stored, or (stored by a
   * version before shapes could change at runtime) `shapes` when the shapes key is theirs; undefined
   * when there is no cursor to resume from.
   */
  heldFor(shapes: readonly ShapeJson[], shapesKey: string): readonly ShapeJson[] | undefined {
    if (this.cursor === undefined) return undefined;
    if (this.heldShapes) return this.heldShapes;
    return this.shapesKey === shapesKey ? shapes : undefined;
  }

  /** A snapshot applier for a shape added to a live connection (see `SnapshotApplier`). */
  addedShape(shape: ShapeJson, others: () => readonly ShapeJson[], batchRows?: number): SnapshotApplier {
    return new SnapshotApplier(this.context, [shape], this.shapesKey ?? '', undefined, batchRows, { others });
  }

  /**
   * The server stopped sending `shape`: its rows that no shape of `remaining` holds are deleted
   * (except rows with pending local writes), and `remaining` is stored as what is held. Returns
   * the tables written.
   */
  async dropShape(shape: ShapeJson, remaining: readonly ShapeJson[]): Promise<ReadonlySet<string>> {
    const codec = this.context.codecs.get(shape.table);
    const tables = new Set<string>();
    await clientTransaction(this.db, true, async (run, start) => {
      if (codec) {
        const keys = await keysOnlyIn(run, this.context, codec, shape, remaining);
        if (await deleteUnlessPending(run, this.context, codec, keys, start!.outboxRows))
          tables.add(codec.name);
      }
      await writeState(run, STATE_KEYS.heldShapes, JSON.stringify(remaining));
    });
    this.heldShapes = remaining;
    return tables;
  }

  /** The next push under the server's limits, or undefined when nothing is stamped. */
  readPush(limits: MessageLimits): Promise<PushPlan | undefined> {
    return readPush(this.context, this.clock, limits);
  }

  /**
   * Applies a `changes` message with its cursor (see `applyChanges`): without a promise when the
   * driver and its connection allow (see `clientTransaction`).
   */
  applyChanges(
    message: ChangesMessage,
    adoptStart = false,
    careful = false,
  ): ChangesApplied | Promise<ChangesApplied> {
    let applied: ChangesApplied | Promise<ChangesApplied>;
    try {
      applied = applyChanges(this.context, this.clock, message, adoptStart, careful);
    } catch (error) {
      // Failures come as a rejection, however far the apply got synchronously.
      return Promise.reject(error);
    }
    if (applied instanceof Promise) return applied.then((done) => this.moved(done));
    return this.moved(applied);
  }

  private moved(applied: ChangesApplied): ChangesApplied {
    this.cursor = applied.cursor;
    return applied;
  }

  /**
   * Settles the outbox after an `ack` (see `applyAck`). When that empties the outbox, the ends
   * noted so far are all stale (no row is unstamped), and are dropped: the next row's seq starts
   * at 1 again, and an old end would cut a later transaction apart.
   */
  async applyAck(ack: AckMessage): Promise<AckApplied> {
    const applied = await applyAck(this.context, ack);
    if (applied.firstSeq === undefined) this.commitEnds.length = 0;
    return applied;
  }

  /**
   * A snapshot applier for one connection's shapes. `stamp` is the welcome's server clock; the
   * cursor and shapes key are taken over once its last chunk is applied (`finishSnapshot`).
   */
  /**
   * Writes the server's answer to a `fetch`; the rows written are no longer unresolved, those this
   * database refused again stay so (and are returned, to report).
   */
  async applyFetched(message: RowsMessage): Promise<ServerRowsWritten> {
    const written = await applyFetchedRows(this.context, message);
    // Rows the server could not send whole leave the list too: asking again would not help.
    const refused = new Set(written.failed.map((e) => rowKeyId(e)));
    const before = this.unresolved.size;
    for (const row of message.rows) {
      if (!refused.has(rowKeyId(row))) this.unresolved.delete(rowKeyId(row));
    }
    if (this.unresolved.size !== before) this.keepUnresolved();
    return written;
  }

  /**
   * Stores the unresolved rows (in `_syncline_state`), so a client that restarts still fetches
   * them. Writes are chained, so the last one stored is the latest set.
   */
  private keepUnresolved(): void {
    const json = JSON.stringify([...this.unresolved.values()]);
    this.keeping = this.keeping
      .then(() =>
        clientTransaction(this.db, false, (run) =>
          andThen(writeState(run, STATE_KEYS.unresolved, json), () => undefined),
        ),
      )
      .catch(() => {
        // The database is closing: the rows are fetched again when a change names them.
      });
  }

  /** Notes rows to fetch from the server (at most `MAX_UNRESOLVED`; the oldest go first). */
  unresolve(rows: readonly RowKey[]): void {
    for (const row of rows) {
      const id = rowKeyId(row);
      this.unresolved.delete(id);
      this.unresolved.set(id, { table: row.table, pk: row.pk });
    }
    for (const id of this.unresolved.keys()) {
      if (this.unresolved.size <= MAX_UNRESOLVED) break;
      this.unresolved.delete(id);
    }
    this.keepUnresolved();
  }

  snapshot(shapes: readonly ShapeJson[], shapesKey: string, stamp: string | undefined, batchRows?: number) {
    return new SnapshotApplier(this.context, shapes, shapesKey, stamp, batchRows);
  }

  /** Records what a finished snapshot wrote: its cursor (none for an added shape) and the shapes held. */
  finishSnapshot(cursor: string | undefined, shapesKey: string, held: readonly ShapeJson[]): void {
    if (cursor !== undefined) {
      this.cursor = cursor;
      this.shapesKey = shapesKey;
    }
    this.heldShapes = held;
  }

  /** The last seq in the outbox now (undefined when empty): what `flush()` waits for. */
  outboxLastSeq(): Promise<number | undefined> {
    return this.outboxSeq('max');
  }

  /** The first seq in the outbox now (undefined when empty). */
  outboxFirstSeq(): Promise<number | undefined> {
    return this.outboxSeq('min');
  }

  private async outboxSeq(which: 'min' | 'max'): Promise<number | undefined> {
    return seqOf(await this.db.driver.query(OUTBOX_SEQ[which]));
  }
}
