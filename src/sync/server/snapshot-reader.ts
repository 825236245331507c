import type { Database } from '../../database/database.js';
import type { Transaction } from '../../database/transaction.js';
import type { CompiledField } from '../../dialect/query-compiler.js';
import { entityKind } from '../../entity.js';
import { SynclineError } from '../../errors.js';
import type { AnyTable } from '../../schema/table.js';
import { count } from '../../sql/functions.js';
import type { SQL } from '../../sql/sql.js';
import { PROTOCOL_VERSION, type SnapshotMessage } from '../protocol/messages.js';
import { columnEncoder, type JsonRow } from '../protocol/value-codec.js';

/**
 * One shape to read: the id the client gave it, its table, and its whole predicate (the shape's
 * filter AND the read rule for this user; undefined for every row).
 *
 * @example
 *   const shape: SnapshotShape = { id: 'todos', table: todos, where: and(filter, readRule) };
 */
export interface SnapshotShape {
  readonly id: string;
  readonly table: AnyTable;
  readonly where: SQL<boolean> | undefined;
}

/**
 * Where snapshot chunks go: `send` queues one message; `drained` resolves when the socket has
 * room again (the next FETCH waits for it, so memory stays flat however big the shape); `aborted`
 * says the connection is gone and reading should stop.
 *
 * @example
 *   const sink: SnapshotSink = { send: (m) => socket.send(JSON.stringify(m)), drained, aborted: () => closed };
 */
export interface SnapshotSink {
  send(message: SnapshotMessage): void;
  drained(): Promise<void>;
  aborted(): boolean;
}

/**
 * Thrown by `readSnapshot` when the sink reports the connection gone: the transaction is rolled back
 * and nothing more is sent.
 *
 * @example
 *   catch (e) { if (e instanceof SnapshotAborted) return; }
 */
export class SnapshotAborted extends SynclineError {
  static override readonly [entityKind]: string = 'SnapshotAborted';
}

const CURSOR = 'syncline_snapshot';

/**
 * Turns the rows the cursor fetched (arrays, in the order of `fields`) into protocol rows in one
 * pass: each value is read as the query would map it (null for SQL NULL, else the column type's
 * decoding) and encoded with `encodeRow`'s encoder for its column, so the result is what
 * `encodeRow` gives for the mapped row, without building that row first (a snapshot maps
 * hundreds of thousands).
 */
function rowsEncoder(table: AnyTable, fields: readonly CompiledField[]): (rows: unknown[][]) => JsonRow[] {
  const names = fields.map((field) => field.path[0]!);
  const decoders = fields.map((field) => field.decode);
  const encoders = names.map((name) => columnEncoder(table, name));
  return (rows) => {
    const out: JsonRow[] = new Array(rows.length);
    for (let r = 0; r < rows.length; r++) {
      const raw = rows[r]!;
      const row: JsonRow = {};
      for (let i = 0; i < names.length; i++) {
        let value = raw[i];
        if (value === null || value === undefined) {
          row[names[i]!] = null;
          continue;
        }
        const decode = decoders[i];
        if (decode) value = decode(value);
        // encodeRow leaves out what is undefined, as JSON would.
        if (value !== undefined) row[names[i]!] = encoders[i]!(value);
      }
      out[r] = row;
    }
    return out;
  };
}

async function readShape(
  tx: Transaction,
  shape: SnapshotShape,
  position: string,
  chunkRows: number,
  sink: SnapshotSink,
): Promise<number> {
  const { table, where } = shape;
  const [{ n }] = await tx.select({ n: count() }).from(table).where(where);
  const totalRows = Number(n);
  // Rows keyed by SQL column name, as every sync message carries them.
  const fields = Object.fromEntries(table.$columnList.map((c) => [c.name, c]));
  const compiled = tx.dialect.compiler.compile(tx.select(fields).from(table).where(where).toNode());
  const encode = rowsEncoder(table, compiled.fields!);
  const raw = (text: string, params: readonly unknown[] = []) =>
    tx.run({ sql: text, params, arrayMode: true, needsBigInt: compiled.needsBigInt });
  await raw(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${compiled.sql}`, compiled.params);
  let sent = 0;
  for (let chunk = 0; ; chunk++) {
    if (sink.aborted()) throw new SnapshotAborted('the connection closed during its snapshot');
    const result = await raw(`FETCH FORWARD ${chunkRows} FROM ${CURSOR}`);
    const rows = encode(result.rows as unknown[][]);
    sent += rows.length;
    const last = rows.length < chunkRows || sent >= totalRows;
    sink.send({
      type: 'snapshot',
      v: PROTOCOL_VERSION,
      shapeId: shape.id,
      position,
      chunk,
      last,
      totalRows: Math.max(totalRows, sent),
      rows,
    });
    if (last) break;
    await sink.drained();
  }
  await raw(`CLOSE ${CURSOR}`);
  return sent;
}

/**
 * Sends the rows of every shape as `snapshot` chunks, all read in one REPEATABLE READ transaction
 * (docs/sync-internals.md, "Server flow" step 4), and returns the change-log position P they were
 * read at: every change ticked up to P is in the rows, and changes after P follow (some may be in
 * the rows already; applying them again is idempotent). Each shape's rows are counted first
 * (`totalRows`), then fetched through a cursor `chunkRows` at a time (default 2,000), waiting for
 * the sink to drain before each next FETCH. A shape with no rows still sends one empty last chunk.
 * On PGlite (one session) other work waits while a snapshot reads.
 *
 * @example
 *   const position = await readSnapshot(db, shapes, sink); // '41'
 */
export async function readSnapshot(
  db: Database,
  shapes: readonly SnapshotShape[],
  sink: SnapshotSink,
  chunkRows = 2000,
): Promise<{ position: string; rows: number }> {
  return db.transaction(async (tx) => {
    await tx.run({
      sql: 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY',
      params: [],
      arrayMode: false,
      needsBigInt: false,
    });
    const state = await tx.run({
      sql: 'SELECT last_tick::text AS t FROM _syncline_reader_state WHERE id = 1',
      params: [],
      arrayMode: false,
      needsBigInt: false,
    });
    const position = ((state.rows[0] as { t?: string } | undefined)?.t ?? '0') as string;
    let rows = 0;
    for (const shape of shapes) rows += await readShape(tx, shape, position, chunkRows, sink);
    return { position, rows };
  });
}
