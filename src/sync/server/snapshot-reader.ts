import type { Database } from '../../database/database.js';
import type { Transaction } from '../../database/transaction.js';
import type { CompiledField } from '../../dialect/query-compiler.js';
import { entityKind } from '../../entity.js';
import { SynclineError } from '../../errors.js';
import type { AnyTable } from '../../schema/table.js';
import { count } from '../../sql/functions.js';
import { type SQL, sql } from '../../sql/sql.js';
import { MAX_SERVER_MESSAGE_BYTES, utf8Length } from '../protocol/message-size.js';
import { PROTOCOL_VERSION, type SnapshotColumnsMessage, type SnapshotMessage } from '../protocol/messages.js';
import { columnEncoder, type JsonRow, type JsonValue } from '../protocol/value-codec.js';

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
 * A sink with `sendColumns` has a client that reads chunks by column (`SnapshotColumnsSchema`);
 * with `sendText` as well, a chunk whose every column PostgreSQL can encode for the wire comes as
 * that message's JSON text, built by PostgreSQL (no row is read into JavaScript).
 *
 * @example
 *   const sink: SnapshotSink = { send: (m) => socket.send(JSON.stringify(m)), drained, aborted: () => closed };
 */
export interface SnapshotSink {
  send(message: SnapshotMessage): void;
  sendColumns?(message: SnapshotColumnsMessage): void;
  /** Marks every chunk `refresh`: the shape is sent again, whole (see `SnapshotSchema`). */
  readonly refresh?: boolean;
  sendText?(text: string): void;
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

/**
 * A column's wire value as PostgreSQL writes it in JSON, exactly what its `columnEncoder` gives
 * for the value the driver reads (uuids lower case, bigints as decimal strings, timestamps as whole
 * ms since 1970: the JavaScript Date of a timestamp drops the microseconds, so floor), or
 * undefined for a kind left to JavaScript.
 */
function wireSql(column: AnyTable['$columnList'][number]): SQL | undefined {
  switch (column.type.kind) {
    case 'uuid':
    case 'text':
    case 'integer':
    case 'boolean':
      return sql`${column}`;
    case 'bigint':
      return sql`${column}::text`;
    case 'timestamp':
      return sql`CASE WHEN isfinite(${column}) THEN floor(extract(epoch FROM ${column}) * 1000)::bigint END`;
    default:
      return undefined;
  }
}

/**
 * The query of a chunk by column built by PostgreSQL: `frame`, the chunk's `values` as JSON text
 * (one array per column, all in the order of the rows: the aggregates of one query see the rows
 * in one order), and `odd`, how many of its rows hold a value without a wire encoding (a timestamp
 * at infinity), for which the chunk is read the JavaScript way instead, failing as it does.
 * Undefined when a column's kind is left to JavaScript.
 */
function columnsFrameSql(table: AnyTable): { frame: SQL<string>; odd: SQL<number> } | undefined {
  const parts: SQL[] = [];
  const infinite: SQL[] = [];
  for (const column of table.$columnList) {
    const wire = wireSql(column);
    if (!wire) return undefined;
    parts.push(sql`coalesce(json_agg(${wire})::text, '[]')`);
    if (column.type.kind === 'timestamp') infinite.push(sql`NOT isfinite(${column})`);
  }
  return {
    frame: sql<string>`'[' || ${sql.join(parts, " || ',' || ")} || ']'`,
    odd:
      infinite.length === 0
        ? sql<number>`0`
        : sql<number>`count(*) FILTER (WHERE ${sql.join(infinite, ' OR ')})`,
  };
}

/** Row objects as a chunk's `values` by column; undefined when a row lacks a column (sent as rows). */
function rowsToColumns(names: readonly string[], rows: readonly JsonRow[]): JsonValue[][] | undefined {
  const values: JsonValue[][] = names.map(() => new Array(rows.length));
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let c = 0; c < names.length; c++) {
      const value = row[names[c]!];
      if (value === undefined) return undefined;
      values[c]![r] = value;
    }
  }
  return values;
}

/** One chunk ready to send: row objects, values by column, or PostgreSQL's JSON text of them. */
type ChunkBody =
  | { readonly rows: JsonRow[]; readonly count: number }
  | { readonly values: JsonValue[][]; readonly count: number }
  | { readonly text: string; readonly count: number };

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
  const atPlaces = sql<boolean>`ctid = ANY(${'{}'}::tid[])`;
  /** Runs a query compiled with `atPlaces` as its last parameter, for the rows of one chunk. */
  const byPlace = (compiled: ReturnType<typeof tx.dialect.compiler.compile>) => {
    const at = compiled.params.length - 1;
    return (rows: readonly PlannedRow[]) => {
      const params = [...compiled.params];
      params[at] = `{${rows.map((r) => `"${r.at}"`).join(',')}}`;
      return raw(compiled.sql, params, compiled.needsBigInt);
    };
  };
  // Rows keyed by SQL column name, as every sync message carries them.
  const names = table.$columnList.map((c) => c.name);
  const fields = Object.fromEntries(table.$columnList.map((c) => [c.name, c]));
  const rowsQuery = tx.dialect.compiler.compile(tx.select(fields).from(table).where(atPlaces).toNode());
  const readPlaced = byPlace(rowsQuery);
  const encode = rowsEncoder(table, rowsQuery.fields!);
  const frameSql = sink.sendColumns && sink.sendText ? columnsFrameSql(table) : undefined;
  const readFrame = frameSql
    ? byPlace(tx.dialect.compiler.compile(tx.select(frameSql).from(table).where(atPlaces).toNode()))
    : undefined;

  const readBody = async (rows: readonly PlannedRow[]): Promise<ChunkBody> => {
    const big = rows.length === 1 && rows[0]!.bytes > chunkBytes;
    if (readFrame && !big) {
      const [text, odd] = ((await readFrame(rows)).rows as unknown[][])[0]!;
      if (Number(odd) === 0) return { text: String(text), count: rows.length };
    }
    let read = encode((await readPlaced(rows)).rows as unknown[][]);
    if (big) read = read.filter((row) => keepBigRow(shape, row, maxRowBytes, sink));
    const values = sink.sendColumns ? rowsToColumns(names, read) : undefined;
    return values ? { values, count: read.length } : { rows: read, count: read.length };
  };

  // The chunks to read, in order, planned from the cursor's places and sizes as they are needed.
  let seen = 0;
  async function* planned(): AsyncGenerator<{ rows: PlannedRow[]; last: boolean }> {
    for (;;) {
      const fetched = (await raw(`FETCH FORWARD ${chunkRows} FROM ${CURSOR}`)).rows as [string, unknown][];
      seen += fetched.length;
      const done = fetched.length < chunkRows || seen >= totalRows;
      const chunks = planChunks(fetched, chunkRows, chunkBytes);
      if (chunks.length === 0) {
        yield { rows: [], last: true };
        return;
      }
      for (let i = 0; i < chunks.length; i++)
        yield { rows: chunks[i]!, last: done && i === chunks.length - 1 };
      if (done) return;
    }
  }
  const plan = planned();
  const readNext = async () => {
    const next = await plan.next();
    if (next.done) return undefined;
    return { body: await readBody(next.value.rows), last: next.value.last };
  };

  let sent = 0;
  let chunk = 0;
  const send = (body: ChunkBody, last: boolean) => {
    sent += body.count;
    const header = {
      type: 'snapshot' as const,
      v: PROTOCOL_VERSION as typeof PROTOCOL_VERSION,
      shapeId: shape.id,
      position,
      chunk: chunk++,
      last,
      totalRows: Math.max(totalRows, sent),
      ...(sink.refresh ? { refresh: true as const } : {}),
    };
    if ('text' in body) {
      const head = JSON.stringify({ ...header, columns: names });
      sink.sendText!(`${head.slice(0, -1)},"values":${body.text}}`);
    } else if ('values' in body) {
      sink.sendColumns!({ ...header, columns: names, values: body.values });
    } else {
      sink.send({ ...header, rows: body.rows });
    }
  };
  // One chunk ahead: the next chunk's queries go to PostgreSQL as soon as this one is sent, so
  // PostgreSQL reads it while the socket carries this one and the client applies it. At most
  // two chunks are held, so memory stays flat however big the shape.
  let reading: Promise<{ body: ChunkBody; last: boolean } | undefined> | undefined = readNext();
  try {
    while (reading) {
      const next = await reading;
      reading = undefined;
      if (!next) break;
      if (sink.aborted()) throw new SnapshotAborted('the connection closed during its snapshot');
      send(next.body, next.last);
      if (next.last) break;
      reading = readNext();
      await sink.drained();
    }
  } finally {
    // A read still under way when the snapshot stops: its failure is the transaction's, not ours.
    reading?.catch(() => {});
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
