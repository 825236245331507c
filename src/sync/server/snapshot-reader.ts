import type { Database } from '../../database/database.js';
import type { Transaction } from '../../database/transaction.js';
import type { CompiledField } from '../../dialect/query-compiler.js';
import { entityKind } from '../../entity.js';
import { SynclineError } from '../../errors.js';
import type { AnyTable } from '../../schema/table.js';
import { count } from '../../sql/functions.js';
import { type SQL, sql } from '../../sql/sql.js';
import { MAX_SERVER_MESSAGE_BYTES, utf8Length } from '../protocol/message-size.js';
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
 * room again (the next chunk waits for it, so memory stays flat however big the shape); `aborted`
 * says the connection is gone and reading should stop; `skipped` hears of a row left out because
 * no message could carry it (see `SnapshotOptions.maxRowBytes`), to tell the client and the log.
 *
 * @example
 *   const sink: SnapshotSink = { send: (m) => socket.send(JSON.stringify(m)), drained, aborted: () => closed };
 */
export interface SnapshotSink {
  send(message: SnapshotMessage): void;
  drained(): Promise<void>;
  aborted(): boolean;
  skipped?(row: SkippedRow): void;
}

/**
 * A row a snapshot left out because its JSON (`bytes`) is over the largest message a client
 * reads: the shape, the table and the row's primary key (SQL column names, protocol values).
 *
 * @example
 *   sink.skipped = ({ table, pk, bytes }) => log.warn('snapshot.row_too_large', `${table} ${JSON.stringify(pk)}: ${bytes} bytes`);
 */
export interface SkippedRow {
  readonly shapeId: string;
  readonly table: string;
  readonly pk: Record<string, unknown>;
  readonly bytes: number;
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

/**
 * How `readSnapshot` cuts and guards its work: a chunk holds at most `chunkRows` rows (default
 * 2,000) and `chunkBytes` bytes (default 1 MiB, measured in PostgreSQL before a row is read; a
 * single bigger row is a chunk of its own); a row whose JSON is over `maxRowBytes` (default
 * `MAX_SERVER_MESSAGE_BYTES` less room for the message around it) is left out, since no client
 * could read the message, and reported to `SnapshotSink.skipped`; the transaction is ended by
 * PostgreSQL when it waits for the socket longer than `idleTimeoutMs` (default 60 s; 0: no limit),
 * so a client that stops reading cannot hold a snapshot open.
 *
 * @example
 *   await readSnapshot(db, shapes, sink, { chunkRows: 500, chunkBytes: 256 << 10 });
 */
export interface SnapshotOptions {
  readonly chunkRows?: number;
  readonly chunkBytes?: number;
  readonly maxRowBytes?: number;
  readonly idleTimeoutMs?: number;
  /**
   * Runs in the snapshot's transaction once its position is read, before any row is sent: a live
   * connection adding a shape sends the changes up to that position first (read through `tx`,
   * which sees exactly the ticks up to it).
   */
  readonly beforeRows?: (tx: Transaction, position: string) => Promise<void>;
}

/** Room left in the largest message for what surrounds a row in a `snapshot` chunk. */
const ENVELOPE_BYTES = 64 << 10;

/**
 * The bytes of one row as a snapshot sends it, estimated in SQL without reading the row into
 * JavaScript: its columns' text lengths (text and bytea lengths come from the value's header, no
 * detoasting), bytea counted as base64, plus the column names and JSON punctuation.
 */
function rowBytes(table: AnyTable): SQL<number> {
  const parts = table.$columnList.map((column) => {
    const length =
      column.type.kind === 'blob'
        ? sql`(octet_length(${column}) * 4 / 3)`
        : sql`octet_length(${column}::text)`;
    return sql`coalesce(${length}, 4) + ${sql.raw(String(column.name.length + 6))}`;
  });
  return sql<number>`(2 + ${sql.join(parts, ' + ')})::bigint`;
}

/** The rows of one chunk: their ctids (to read them by) and their estimated bytes. */
interface PlannedRow {
  readonly at: string;
  readonly bytes: number;
}

async function readShape(
  tx: Transaction,
  shape: SnapshotShape,
  position: string,
  limits: Required<Omit<SnapshotOptions, 'beforeRows'>>,
  sink: SnapshotSink,
): Promise<number> {
  const { table, where } = shape;
  const { chunkRows, chunkBytes, maxRowBytes } = limits;
  const [{ n }] = await tx.select({ n: count() }).from(table).where(where);
  const totalRows = Number(n);
  const raw = (text: string, params: readonly unknown[] = [], needsBigInt = false) =>
    tx.run({ sql: text, params, arrayMode: true, needsBigInt });
  // First each row's place and size, a cheap scan; then the rows of each chunk by their place. In
  // one REPEATABLE READ transaction a ctid names the row version the snapshot sees: it cannot be
  // vacuumed away while the transaction lasts.
  const sized = tx.dialect.compiler.compile(
    tx
      .select({ at: sql<string>`ctid::text`, bytes: rowBytes(table) })
      .from(table)
      .where(where)
      .toNode(),
  );
  await raw(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${sized.sql}`, sized.params);
  // Rows keyed by SQL column name, as every sync message carries them.
  const fields = Object.fromEntries(table.$columnList.map((c) => [c.name, c]));
  const byPlace = tx.dialect.compiler.compile(
    tx.select(fields).from(table).where(sql`ctid = ANY(${'{}'}::tid[])`).toNode(),
  );
  const encode = rowsEncoder(table, byPlace.fields!);
  const placeParam = byPlace.params.length - 1;
  const readRows = async (rows: readonly PlannedRow[]): Promise<JsonRow[]> => {
    const params = [...byPlace.params];
    params[placeParam] = `{${rows.map((r) => `"${r.at}"`).join(',')}}`;
    return encode((await raw(byPlace.sql, params, byPlace.needsBigInt)).rows as unknown[][]);
  };

  let sent = 0;
  let chunk = 0;
  let seen = 0;
  const send = (rows: JsonRow[], last: boolean) => {
    sent += rows.length;
    sink.send({
      type: 'snapshot',
      v: PROTOCOL_VERSION,
      shapeId: shape.id,
      position,
      chunk: chunk++,
      last,
      totalRows: Math.max(totalRows, sent),
      rows,
    });
  };
  for (;;) {
    if (sink.aborted()) throw new SnapshotAborted('the connection closed during its snapshot');
    const fetched = (await raw(`FETCH FORWARD ${chunkRows} FROM ${CURSOR}`)).rows as [string, unknown][];
    seen += fetched.length;
    const done = fetched.length < chunkRows || seen >= totalRows;
    const chunks = planChunks(fetched, chunkRows, chunkBytes);
    if (chunks.length === 0) {
      send([], true);
      break;
    }
    for (let i = 0; i < chunks.length; i++) {
      if (sink.aborted()) throw new SnapshotAborted('the connection closed during its snapshot');
      let rows = await readRows(chunks[i]!);
      if (chunks[i]!.length === 1 && chunks[i]![0]!.bytes > chunkBytes) {
        rows = rows.filter((row) => keepBigRow(shape, row, maxRowBytes, sink));
      }
      send(rows, done && i === chunks.length - 1);
      if (!(done && i === chunks.length - 1)) await sink.drained();
    }
    if (done) break;
  }
  await raw(`CLOSE ${CURSOR}`);
  return sent;
}

/**
 * Cuts the rows the cursor gave (`[ctid, bytes]`) into chunks of at most `chunkRows` rows and
 * `chunkBytes` bytes; a row bigger than `chunkBytes` is a chunk of its own.
 */
function planChunks(
  fetched: readonly [string, unknown][],
  chunkRows: number,
  chunkBytes: number,
): PlannedRow[][] {
  const chunks: PlannedRow[][] = [];
  let current: PlannedRow[] = [];
  let bytes = 0;
  for (const [at, size] of fetched) {
    const row = { at, bytes: Number(size) };
    if (current.length > 0 && (current.length >= chunkRows || bytes + row.bytes > chunkBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(row);
    bytes += row.bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Whether a row estimated bigger than a chunk still fits in a message once encoded: measured
 * exactly here (only such rows cost a JSON.stringify). One that does not is reported and left out.
 */
function keepBigRow(shape: SnapshotShape, row: JsonRow, maxRowBytes: number, sink: SnapshotSink): boolean {
  const bytes = utf8Length(JSON.stringify(row));
  if (bytes <= maxRowBytes) return true;
  const pk = Object.fromEntries(shape.table.$primaryKeyColumns.map((c) => [c.name, row[c.name]]));
  sink.skipped?.({ shapeId: shape.id, table: shape.table.$name, pk, bytes });
  return false;
}

/**
 * Sends the rows of every shape as `snapshot` chunks, all read in one REPEATABLE READ transaction
 * (docs/sync-internals.md, "Server flow" step 4), and returns the change-log position P they were
 * read at: every change ticked up to P is in the rows, and changes after P follow (some may be in
 * the rows already; applying them again is idempotent). Each shape's rows are counted first
 * (`totalRows`), then cut into chunks by rows and bytes (`SnapshotOptions`), waiting for the sink
 * to drain before each next chunk is read. A shape with no rows still sends one empty last chunk.
 * `options` may be a number, the chunk's row limit. On PGlite (one session) other work waits while
 * a snapshot reads.
 *
 * @example
 *   const { position } = await readSnapshot(db, shapes, sink, { chunkRows: 2000 }); // '41'
 */
export async function readSnapshot(
  db: Database,
  shapes: readonly SnapshotShape[],
  sink: SnapshotSink,
  options: SnapshotOptions | number = {},
): Promise<{ position: string; rows: number }> {
  const given = typeof options === 'number' ? { chunkRows: options } : options;
  const limits: Required<Omit<SnapshotOptions, 'beforeRows'>> = {
    chunkRows: given.chunkRows ?? 2000,
    chunkBytes: given.chunkBytes ?? 1 << 20,
    maxRowBytes: given.maxRowBytes ?? MAX_SERVER_MESSAGE_BYTES - ENVELOPE_BYTES,
    idleTimeoutMs: given.idleTimeoutMs ?? 60_000,
  };
  return db.transaction(async (tx) => {
    const set = (text: string) => tx.run({ sql: text, params: [], arrayMode: false, needsBigInt: false });
    await set('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    // Waiting for a socket that never drains is idle in transaction: PostgreSQL ends it.
    await set(
      `SET LOCAL idle_in_transaction_session_timeout = ${Math.max(0, Math.floor(limits.idleTimeoutMs))}`,
    );
    const state = await tx.run({
      sql: 'SELECT last_tick::text AS t FROM _syncline_reader_state WHERE id = 1',
      params: [],
      arrayMode: false,
      needsBigInt: false,
    });
    const position = ((state.rows[0] as { t?: string } | undefined)?.t ?? '0') as string;
    if (given.beforeRows) await given.beforeRows(tx, position);
    let rows = 0;
    for (const shape of shapes) rows += await readShape(tx, shape, position, limits, sink);
    return { position, rows };
  });
}
