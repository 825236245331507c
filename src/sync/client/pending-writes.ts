import type { MaybePromise } from '../../database/driver.js';
import { sqlitePhysicalType } from '../../dialect/sqlite/sqlite-types.js';
import type { Column } from '../../schema/column.js';
import type { Run } from './client-transaction.js';
import type { TableCodec } from './table-codec.js';

/**
 * A stamp of a pending local write: an encoded HLC, or null while the write is not stamped yet
 * (then it is newer than anything the server can send).
 */
type PendingStamp = string | null;

/**
 * The local writes to one row that are still in the outbox: the newest stamp per column written,
 * of the insert that created the row and of the delete that removed it, and the last operation.
 *
 * @example
 *   const row = pending.get('todos', key);
 *   if (row?.lastOp === 'delete') skipRemoteInsert();
 */
export interface PendingRow {
  readonly columns: Map<string, PendingStamp>;
  /**
   * The newest local value of each column those writes set, as the capture triggers wrote it: what
   * the row must hold again when a remote write re-creates it after a local cascade removed it.
   */
  readonly values: Map<string, unknown>;
  insert: PendingStamp | undefined;
  delete: PendingStamp | undefined;
  lastOp: 'insert' | 'update' | 'delete';
}

function newest(a: PendingStamp | undefined, b: PendingStamp): PendingStamp {
  if (a === undefined) return b;
  if (a === null || b === null) return null;
  return a > b ? a : b;
}

/**
 * True when a pending local write stamped `local` beats a server change stamped `remote`
 * (docs/sync-internals.md, "Applying a remote change"): a newer stamp, or not stamped yet. A server
 * row with no stamp of its own (`remote` undefined: a rejected batch's restored row) loses to every
 * pending write, since those are pushed after it and win on the server too.
 *
 * @example
 *   if (pendingWins(pending.columns.get('title'), change.hlc)) keepLocalTitle();
 */
export function pendingWins(local: PendingStamp | undefined, remote: string | undefined): boolean {
  if (local === undefined) return false;
  if (local === null || remote === undefined) return true;
  return local > remote;
}

/**
 * A row a server message touches: its table's codec and its key values as SQLite stores them (in
 * `keyColumns` order, as `TableCodec.keyOf` takes them).
 *
 * @example
 *   const wanted: PendingKey[] = [[codec, codec.storageKey(change.pk)]];
 */
export type PendingKey = readonly [codec: TableCodec, key: readonly unknown[]];

/** Keys per lookup statement: well under SQLite's oldest bound-parameter limit (999). */
const MAX_PARAMS = 900;

/**
 * The affinity SQLite gives a declared type (https://sqlite.org/datatype3.html, 3.1), or undefined
 * for BLOB affinity, which converts nothing (a CAST to BLOB would).
 */
function affinity(declared: string): string | undefined {
  const type = declared.toUpperCase();
  if (type.includes('INT')) return 'INTEGER';
  if (type.includes('CHAR') || type.includes('CLOB') || type.includes('TEXT')) return 'TEXT';
  if (type.includes('BLOB') || type === '') return undefined;
  if (type.includes('REAL') || type.includes('FLOA') || type.includes('DOUB')) return 'REAL';
  return 'NUMERIC';
}

/**
 * One bound key value as the capture triggers store it in `pk` (outbox-triggers.ts, `stored`):
 * first converted as the column's affinity converts it on write (the trigger sees the stored
 * value), then hex for blobs and text for 64-bit integers. Building the JSON in SQLite with the
 * trigger's own `json_object` makes the text match byte for byte (number formats, escapes).
 */
function storedKey(column: Column<any, any, any, any>): string {
  // The value is bound twice here: hex(NULL) is '', which is also the hex of an empty blob.
  if (column.type.kind === 'blob') return "CASE WHEN typeof(?) = 'null' THEN NULL ELSE hex(?) END";
  if (column.type.kind === 'bigint') return 'CAST(CAST(? AS INTEGER) AS TEXT)';
  const to = affinity(sqlitePhysicalType(column.type).sqlType);
  return to ? `CAST(? AS ${to})` : '?';
}

/** Lookup statements per codec, by keys per statement (a power of two, so only a few texts). */
const lookups = new WeakMap<TableCodec, Map<number, string>>();

function lookupSql(codec: TableCodec, keys: number): string {
  let texts = lookups.get(codec);
  if (!texts) lookups.set(codec, (texts = new Map()));
  let text = texts.get(keys);
  if (!text) {
    const parts = codec.keyColumns.map((c) => `'${c.name.replaceAll("'", "''")}', ${storedKey(c)}`);
    const one = `json_object(${parts.join(', ')})`;
    // A row's stamp is its batch's: the first batch ending at or after it, if it starts before it.
    text = `SELECT o.op, o.pk, o."row", (SELECT b.hlc FROM _syncline_batches AS b
        WHERE b.last_seq >= o.seq AND b.first_seq <= o.seq ORDER BY b.last_seq LIMIT 1)
      FROM _syncline_outbox AS o WHERE o.table_name = ? AND o.pk IN (${new Array(keys).fill(one).join(', ')}) ORDER BY o.seq`;
    texts.set(keys, text);
  }
  return text;
}

async function rowsOf(result: ReturnType<Run>): Promise<unknown[]> {
  return (result instanceof Promise ? await result : result).rows;
}

/**
 * From how many outbox rows on the pending writes are looked up through an index on
 * `(table_name, pk)`. Below it a lookup reads the whole outbox, which is then short, and the
 * capture triggers do not pay for keeping an index up to date on every local write (most of
 * their cost): an online client's outbox holds the few writes the server has not acknowledged.
 */
export const OUTBOX_KEY_INDEX_FROM = 1_000;

/** The outbox's key index (ack-apply.ts drops it when the outbox empties). */
export const OUTBOX_KEY_INDEX = '_syncline_outbox_key';

/**
 * Creates the key index when the outbox spans `OUTBOX_KEY_INDEX_FROM` rows or more and it is
 * missing: an outbox that grew long offline is then looked up by key, whatever its length.
 * `outboxRows` is the span the remote transaction read as it began (`RemoteStart`).
 */
async function ensureKeyIndex(run: Run, outboxRows: number): Promise<void> {
  if (outboxRows >= OUTBOX_KEY_INDEX_FROM) {
    await run(`CREATE INDEX IF NOT EXISTS ${OUTBOX_KEY_INDEX} ON _syncline_outbox (table_name, pk)`);
  }
}

/**
 * The pending local writes to the rows a server message touches, read inside its apply transaction
 * and indexed by table and row, so remote rows can keep the columns that local writes not yet
 * acknowledged have changed. Only those rows are read (by the `(table_name, pk)` index once the
 * outbox is long, see `OUTBOX_KEY_INDEX_FROM`), so an apply costs about the same however long
 * the outbox is; an empty outbox (known from the transaction's first statement) costs nothing.
 * Encoded stamps compare as strings (`encodeHlc` sorts like the stamps).
 *
 * @example
 *   const pending = await PendingWrites.load(run, [[codec, key]], start.outboxRows);
 *   const row = pending.get('todos', codec.keyOf(key));
 */
export class PendingWrites {
  private readonly rows = new Map<string, Map<string, PendingRow>>();

  private constructor() {}

  /**
   * Decodes the rows of one server message with `decode`, then reads the pending writes of just
   * those rows (`outboxRows` as for `load`). A row that fails to decode stops the decoding; its
   * error comes back as `failure`, for the caller to throw when that row's turn comes (after
   * applying the rows before it).
   *
   * @example
   *   const { decoded, failure, pending } = await PendingWrites.decodeAndLoad(run, changes, decode, start.outboxRows);
   *   // Without a promise when `outboxRows` is 0.
   */
  static decodeAndLoad<T, D extends { codec: TableCodec; key: readonly unknown[] }>(
    run: Run,
    items: Iterable<T>,
    decode: (item: T) => D,
    outboxRows: number,
  ): MaybePromise<{ decoded: D[]; failure: { error: unknown } | undefined; pending: PendingWrites }> {
    const decoded: D[] = [];
    let failure: { error: unknown } | undefined;
    try {
      for (const item of items) decoded.push(decode(item));
    } catch (error) {
      failure = { error };
    }
    // An outbox known to be empty has nothing pending: no statement, no promise.
    if (outboxRows === 0) return { decoded, failure, pending: new PendingWrites() };
    return PendingWrites.load(
      run,
      decoded.map(({ codec, key }) => [codec, key] as const),
      outboxRows,
    ).then((pending) => ({ decoded, failure, pending }));
  }

  /**
   * True when the outbox holds a row of `table`. `outboxRows` is the outbox's span as the remote
   * transaction began (`RemoteStart`): at 0 nothing is asked.
   */
  static async any(run: Run, table: string, outboxRows: number): Promise<boolean> {
    if (outboxRows === 0) return false;
    const rows = await rowsOf(
      run('SELECT 1 FROM _syncline_outbox WHERE table_name = ? LIMIT 1', [table], { arrayMode: true }),
    );
    return rows.length > 0;
  }

  /**
   * Reads the pending writes to the rows `keys` names (repeats allowed), in the transaction `run`
   * belongs to. The rows come per statement in seq order, and each row's writes all come in one
   * statement, so each row sees its writes in the order they were made. `outboxRows` is the
   * outbox's span as the remote transaction began (`RemoteStart`), an upper bound of its length.
   */
  static async load(run: Run, keys: Iterable<PendingKey>, outboxRows: number): Promise<PendingWrites> {
    const pending = new PendingWrites();
    // An empty outbox (the usual case online) answers before any key is built.
    if (outboxRows === 0) return pending;
    const byTable = new Map<TableCodec, Map<string, readonly unknown[]>>();
    for (const [codec, key] of keys) {
      let unique = byTable.get(codec);
      if (!unique) byTable.set(codec, (unique = new Map()));
      unique.set(codec.keyOf(key), key);
    }
    if (byTable.size === 0) return pending;
    await ensureKeyIndex(run, outboxRows);
    for (const [codec, unique] of byTable) {
      const blobs = codec.keyColumns.map((c) => c.type.kind === 'blob');
      const perKey = codec.keyColumns.length + blobs.filter(Boolean).length;
      const perStatement = Math.max(1, Math.floor((MAX_PARAMS - 1) / perKey));
      const all = [...unique.values()];
      for (let start = 0; start < all.length; start += perStatement) {
        const chunk = all.slice(start, start + perStatement);
        // Pad to a power of two with the last key (a repeat in IN matches nothing more), so a
        // handful of statement texts serve every message size.
        let size = 1;
        while (size < chunk.length) size *= 2;
        size = Math.min(size, perStatement);
        const params: unknown[] = [codec.name];
        for (let i = 0; i < size; i++) {
          const key = chunk[Math.min(i, chunk.length - 1)];
          for (let k = 0; k < key.length; k++) {
            // A missing key value matches a stored NULL, as `keyOf` makes them the same row.
            const value = key[k] === undefined ? null : key[k];
            params.push(value);
            if (blobs[k]) params.push(value);
          }
        }
        const rows = await rowsOf(run(lookupSql(codec, size), params, { arrayMode: true }));
        pending.add(codec, rows as [PendingRow['lastOp'], string, string | null, string | null][]);
      }
    }
    return pending;
  }

  private add(codec: TableCodec, rows: [PendingRow['lastOp'], string, string | null, string | null][]): void {
    let byKey = this.rows.get(codec.name);
    for (const [op, pk, row, hlc] of rows) {
      if (!byKey) this.rows.set(codec.name, (byKey = new Map()));
      const key = codec.keyOfOutboxPk(JSON.parse(pk));
      let entry = byKey.get(key);
      if (!entry) {
        entry = { columns: new Map(), values: new Map(), insert: undefined, delete: undefined, lastOp: op };
        byKey.set(key, entry);
      }
      entry.lastOp = op;
      if (op === 'delete') {
        entry.delete = newest(entry.delete, hlc);
        continue;
      }
      if (op === 'insert') entry.insert = newest(entry.insert, hlc);
      const written = JSON.parse(row ?? '{}') as Record<string, unknown>;
      const names = op === 'insert' ? codec.columns.map((c) => c.name) : Object.keys(written);
      for (const name of names) {
        entry.columns.set(name, newest(entry.columns.get(name), hlc));
        // Rows come in seq order: the last one read is the newest local value.
        if (Object.hasOwn(written, name)) entry.values.set(name, written[name]);
      }
    }
  }

  /** True when none of the rows asked for has a pending local write. */
  get empty(): boolean {
    return this.rows.size === 0;
  }

  /** The pending writes to one row, by table name and `TableCodec.keyOf` key. */
  get(table: string, key: string): PendingRow | undefined {
    return this.rows.get(table)?.get(key);
  }

  /** True when one of the rows asked for of the table has a pending write. */
  touches(table: string): boolean {
    return this.rows.has(table);
  }
}
