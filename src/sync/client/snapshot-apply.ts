import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { SyncProtocolError } from '../../errors.js';
import {
  columnChunkRows,
  columnChunkToRows,
  type ShapeJson,
  type SnapshotChunk,
  type SnapshotMessage,
} from '../protocol/messages.js';
import type { JsonRow, JsonValue } from '../protocol/value-codec.js';
import type { ApplyContext } from './apply-context.js';
import { STATE_KEYS, writeState } from './client-state.js';
import { clientTransaction, type Run } from './client-transaction.js';
import { type PendingKey, PendingWrites } from './pending-writes.js';
import { RowApplyError } from './remote-apply.js';
import { applyRemoteRow } from './remote-row.js';
import { deleteUnlessPending, keysOnlyIn } from './shape-prune.js';
import type { TableCodec } from './table-codec.js';
import { WholeRowBatch } from './whole-row-batch.js';

/**
 * Where a snapshot stands, summed over its shapes: rows applied so far and the rows the shapes
 * whose first chunk arrived will hold in all.
 *
 * @example
 *   sync.on('progress', ({ rows, totalRows }) => bar.update(rows / totalRows));
 */
export interface SnapshotProgress {
  readonly rows: number;
  readonly totalRows: number;
}

/**
 * What applying one snapshot chunk did: the tables it wrote, the progress, and, with the last chunk
 * of the last shape, the position the cursor moved to.
 *
 * @example
 *   const { done, cursor } = await snapshot.apply(chunk);
 */
export interface ChunkApplied {
  readonly tables: ReadonlySet<string>;
  readonly progress: SnapshotProgress;
  readonly cursor: string | undefined;
  /** The last chunk of the last shape was applied. */
  readonly done: boolean;
  /** Rows this database refused (a careful apply only): skipped, reported, and fetched later. */
  readonly failed: readonly RowApplyError[];
}

interface ShapeProgress {
  nextChunk: number;
  rows: number;
  totalRows: number;
  done: boolean;
}

/**
 * Applies the snapshot of a connection's shapes, chunk by chunk. Each chunk is written in one
 * transaction with capture off, whole rows several per statement (`batchRows` per statement, the
 * `snapshotBatchRows` option) and with no promise per row on a synchronous driver. Chunks run
 * with the app's foreign keys enforced and only fall back to enforcement off when they break one
 * (docs/sync-internals.md); the last chunk runs with it off. A row with a
 * pending local write goes alone through `applyRemoteRow` and keeps its pending columns: the
 * server has not applied that write yet and it may still win; if it loses, the server's rows come
 * back with its ack. (The `welcome` stamp it is given is not needed for that any more.)
 * A table that already had rows when the snapshot began is pruned with the last chunk of the last
 * shape: rows no shape of the snapshot contained are deleted, unless they have pending local
 * writes. That same transaction writes the cursor (the snapshot's position) and the shapes key.
 *
 * @example
 *   const snapshot = new SnapshotApplier(context, hello.shapes, shapesKey, welcome.hlc);
 *   const applied = await snapshot.apply(chunk);
 */
export class SnapshotApplier {
  private position: string | undefined;
  /** The shapes held once this snapshot is in (stored with its last chunk). */
  get held(): readonly ShapeJson[] {
    return this.added ? [...this.added.others(), ...this.shapeList] : this.shapeList;
  }
  private readonly shapes = new Map<string, { codec: TableCodec; progress: ShapeProgress }>();
  /** Keys seen per table that needs pruning (it had rows before); absent for the others. */
  private seen: Map<string, Set<string>> | undefined;
  /** Tables a chunk of this snapshot broke a foreign key of (a child before its parent). */
  private readonly breaksForeignKeys = new Set<string>();

  /**
   * @param added set for a shape added to a live connection (`shapes` is then that one shape):
   *   the shapes held besides it when it finishes, whose rows it must not prune, and which stay held with it. Its last
   *   chunk moves no cursor (the changes up to its position came before it).
   */
  constructor(
    private readonly context: ApplyContext,
    private readonly shapeList: readonly ShapeJson[],
    private readonly shapesKey: string,
    _stamp: string | undefined,
    private readonly batchRows = 500,
    private readonly added?: { readonly others: () => readonly ShapeJson[] },
  ) {
    const shapes = shapeList;
    for (const shape of shapes) {
      const codec = context.codecs.get(shape.table);
      if (!codec)
        throw new SyncProtocolError(`shape "${shape.id}" names table "${shape.table}", which is not synced`);
      this.shapes.set(shape.id, {
        codec,
        progress: { nextChunk: 0, rows: 0, totalRows: 0, done: false },
      });
    }
  }

  /** True once a chunk has arrived and the last shape is not finished yet. */
  get inProgress(): boolean {
    return this.position !== undefined && [...this.shapes.values()].some((s) => !s.progress.done);
  }

  private check(chunk: SnapshotChunk): { codec: TableCodec; progress: ShapeProgress } {
    const shape = this.shapes.get(chunk.shapeId);
    if (!shape) {
      throw new SyncProtocolError(
        `the server sent a snapshot of shape "${chunk.shapeId}", which this client did not ask for (its shapes: ${[...this.shapes.keys()].join(', ')})`,
      );
    }
    if (this.position !== undefined && chunk.position !== this.position) {
      throw new SyncProtocolError(
        `snapshot chunk of shape "${chunk.shapeId}" is at position ${chunk.position}, but the snapshot began at ${this.position}`,
      );
    }
    if (shape.progress.done || chunk.chunk !== shape.progress.nextChunk) {
      throw new SyncProtocolError(
        `snapshot of shape "${chunk.shapeId}": got chunk ${chunk.chunk}, expected ${shape.progress.done ? 'none (it was complete)' : shape.progress.nextChunk}`,
      );
    }
    return shape;
  }

  private progress(): SnapshotProgress {
    let rows = 0;
    let totalRows = 0;
    for (const { progress } of this.shapes.values()) {
      rows += progress.rows;
      totalRows += progress.totalRows;
    }
    return { rows, totalRows };
  }

  /** Applies one chunk; see the class comment. Throws `SyncProtocolError` for a chunk out of order. */
  /**
   * Applies a chunk; one the database refuses as a whole is applied again row by row, each row in
   * a savepoint of its own (foreign keys off), and the rows it refuses come back in `failed`.
   */
  async apply(chunk: SnapshotChunk): Promise<ChunkApplied> {
    this.check(chunk);
    try {
      return await this.applyChunk(chunk, undefined);
    } catch {
      return this.applyChunk(chunk, []);
    }
  }

  private async applyChunk(chunk: SnapshotChunk, failed: RowApplyError[] | undefined): Promise<ChunkApplied> {
    const shape = this.check(chunk);
    const { codec } = shape;
    const finishing =
      chunk.last && [...this.shapes].every(([id, s]) => s.progress.done || id === chunk.shapeId);
    const tables = new Set([codec.name]);
    let retried = false;
    await clientTransaction(
      this.context.db,
      true,
      async (run, start) => {
        retried = start!.retried;
        if (this.position === undefined) this.seen = await this.tablesToPrune(run);
        const pending = (await PendingWrites.any(run, codec.name, start!.outboxRows))
          ? await PendingWrites.load(run, chunkKeys(codec, rowsOf(chunk)), start!.outboxRows)
          : undefined;
        const local = pending?.touches(codec.name) ? pending : undefined;
        if (failed) await this.writeRowsCarefully(run, codec, rowsOf(chunk), pending, failed);
        else await this.writeChunk(run, codec, chunk, local);
        if (finishing && this.added) {
          const shape = this.shapeList[0]!;
          const seen = this.seen?.get(codec.name);
          const keys = seen
            ? (await keysOnlyIn(run, this.context, codec, shape, this.added.others())).filter(
                (key) => !seen.has(codec.keyOf(key)),
              )
            : [];
          if (await deleteUnlessPending(run, this.context, codec, keys, start!.outboxRows))
            tables.add(codec.name);
          await writeState(run, STATE_KEYS.heldShapes, JSON.stringify(this.held));
        } else if (finishing) {
          for (const table of await this.prune(run, start!.outboxRows)) tables.add(table);
          start!.newCursor = chunk.position;
          await writeState(run, STATE_KEYS.shapesKey, this.shapesKey);
          await writeState(run, STATE_KEYS.heldShapes, JSON.stringify(this.held));
        }
      },
      // The last chunk prunes with enforcement off, as deletes from a snapshot never cascade.
      // Before it, switching enforcement off for every chunk would make SQLite expire and
      // prepare again every statement per chunk (a tenth of the SQLite time of a 100,000-row
      // snapshot): a chunk runs with the app's enforcement, and only one that breaks a foreign
      // key runs again with it off, as do that table's later chunks.
      { foreignKeys: failed || finishing || this.breaksForeignKeys.has(codec.name) ? 'off' : 'try-on' },
    );
    if (retried) this.breaksForeignKeys.add(codec.name);
    this.position = chunk.position;
    shape.progress.nextChunk++;
    shape.progress.rows += 'rows' in chunk ? chunk.rows.length : columnChunkRows(chunk);
    shape.progress.totalRows = chunk.totalRows;
    if (chunk.last) shape.progress.done = true;
    return {
      tables,
      progress: this.progress(),
      cursor: finishing && !this.added ? chunk.position : undefined,
      done: finishing,
      failed: failed ?? [],
    };
  }

  /** Each row on its own, in a savepoint: a row the database refuses is rolled back alone. */
  private async writeRowsCarefully(
    run: Run,
    codec: TableCodec,
    rows: SnapshotMessage['rows'],
    pending: PendingWrites | undefined,
    failed: RowApplyError[],
  ): Promise<void> {
    const seen = this.seen?.get(codec.name);
    const writer = this.context.writer(codec);
    for (const row of rows) {
      const pk = Object.fromEntries(codec.keyColumns.map((c) => [c.name, row[c.name] ?? null]));
      await run('SAVEPOINT syncline_row');
      try {
        const values = codec.storageRow(row);
        const key = codec.keyOf(codec.keyIndexes.map((i) => values[i]));
        seen?.add(key);
        await applyRemoteRow(run, writer, codec, pending?.get(codec.name, key), 'insert', values, undefined);
        await run('RELEASE syncline_row');
      } catch (error) {
        await run('ROLLBACK TO syncline_row');
        await run('RELEASE syncline_row');
        failed.push(new RowApplyError(codec.name, pk as JsonRow, 'snapshot row', error));
      }
    }
  }

  /** The tables of the shapes that hold rows now: only they can have rows the snapshot lacks. */
  private async tablesToPrune(run: Run): Promise<Map<string, Set<string>>> {
    const seen = new Map<string, Set<string>>();
    for (const { codec } of this.shapes.values()) {
      if (seen.has(codec.name)) continue;
      const { rows } = await run(`SELECT 1 FROM ${quoteIdentifier(codec.name)} LIMIT 1`);
      if (rows.length > 0) seen.set(codec.name, new Set());
    }
    return seen;
  }

  /** A chunk's rows, each decoded by `fill` straight into the batch's parameters (see `writeRows`). */
  private async writeChunk(
    run: Run,
    codec: TableCodec,
    chunk: SnapshotChunk,
    pending: PendingWrites | undefined,
  ): Promise<void> {
    if ('rows' in chunk) {
      const { rows } = chunk;
      return this.writeRows(
        run,
        codec,
        rows.length,
        (r, out, at) => codec.storageInto(rows[r]!, out, at),
        pending,
      );
    }
    // By column: the columns are looked up once per chunk, not per row.
    const read = codec.columnsReader(chunk.columns);
    const { values } = chunk;
    return this.writeRows(
      run,
      codec,
      columnChunkRows(chunk),
      (r, out, at) => read(values, r, out, at),
      pending,
    );
  }

  private async writeRows(
    run: Run,
    codec: TableCodec,
    count: number,
    fill: (row: number, out: unknown[], offset: number) => number,
    pending: PendingWrites | undefined,
  ): Promise<void> {
    const batch = new WholeRowBatch(this.context.writer(codec), codec.columns.length, this.batchRows);
    const seen = this.seen?.get(codec.name);
    const columns = codec.columns.length;
    const keys = codec.keyIndexes;
    // Each row is decoded straight into the batch's parameters; a row that cannot join the batch
    // (a pending local write, missing columns) is written alone from its slot, which the next row
    // then reuses. A snapshot holds each key once, so the batch need not be written before it.
    for (let r = 0; r < count; r++) {
      const { params, offset } = batch;
      const whole = fill(r, params, offset) === columns;
      let key = '';
      if (seen || pending) {
        key =
          keys.length === 1
            ? codec.keyOf([params[offset + keys[0]!]])
            : codec.keyOf(keys.map((i) => params[offset + i]));
        seen?.add(key);
      }
      const local = pending?.get(codec.name, key);
      if (whole && !local) {
        const taken = batch.take(run);
        if (taken instanceof Promise) await taken;
        continue;
      }
      const values = params.slice(offset, offset + columns);
      const result = applyRemoteRow(run, batch.writer, codec, local, 'insert', values, undefined);
      if (result instanceof Promise) await result;
    }
    await batch.flush(run);
  }

  /** Deletes rows the snapshot did not hold from tables that had rows; returns the tables pruned. */
  private async prune(run: Run, outboxRows: number): Promise<string[]> {
    const pruned: string[] = [];
    for (const [table, seen] of this.seen ?? []) {
      const codec = this.context.codecs.get(table)!;
      const { rows } = await this.context.writer(codec).selectKeys(run);
      const unseen = (rows as unknown[][]).filter((key) => !seen.has(codec.keyOf(key)));
      if (await deleteUnlessPending(run, this.context, codec, unseen, outboxRows)) pruned.push(table);
    }
    return pruned;
  }
}

/** A chunk's rows as row objects, whichever form it came in. */
function rowsOf(chunk: SnapshotChunk): SnapshotMessage['rows'] {
  return 'rows' in chunk ? chunk.rows : columnChunkToRows(chunk);
}

/**
 * The keys of a chunk's rows, as SQLite stores them. A row whose key is missing or bad is left
 * out: writing it throws the same error it always did, in its turn.
 */
function chunkKeys(codec: TableCodec, rows: SnapshotMessage['rows']): PendingKey[] {
  const keys: PendingKey[] = [];
  for (const row of rows) {
    const pk: Record<string, JsonValue> = {};
    for (const column of codec.keyColumns) {
      const value = row[column.name];
      if (value !== undefined) pk[column.name] = value;
    }
    try {
      keys.push([codec, codec.storageKey(pk)]);
    } catch {
      // Thrown again by writeRows, after the rows before it, as without this lookup.
    }
  }
  return keys;
}
