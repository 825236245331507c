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
 * The outbox as it stands inside one apply transaction, indexed by table and row, so remote rows
 * can keep the columns that local writes not yet acknowledged have changed. Encoded stamps compare
 * as strings (`encodeHlc` sorts like the stamps). Empty, and free, when the outbox is empty.
 *
 * @example
 *   const pending = await PendingWrites.load(run, codecs);
 *   const row = pending.get('todos', codec.keyOf(key));
 */
export class PendingWrites {
  private readonly rows = new Map<string, Map<string, PendingRow>>();

  private constructor() {}

  /** Reads the whole outbox (in seq order) in the transaction `run` belongs to. */
  static async load(run: Run, codecs: ReadonlyMap<string, TableCodec>): Promise<PendingWrites> {
    const pending = new PendingWrites();
    const { rows } = await run(
      'SELECT table_name, op, pk, "row", hlc FROM _syncline_outbox ORDER BY seq',
      [],
      {
        arrayMode: true,
      },
    );
    for (const [table, op, pk, row, hlc] of rows as [
      string,
      PendingRow['lastOp'],
      string,
      string | null,
      string | null,
    ][]) {
      const codec = codecs.get(table);
      if (!codec) continue;
      let byKey = pending.rows.get(table);
      if (!byKey) pending.rows.set(table, (byKey = new Map()));
      const key = codec.keyOfOutboxPk(JSON.parse(pk));
      let entry = byKey.get(key);
      if (!entry) {
        entry = { columns: new Map(), insert: undefined, delete: undefined, lastOp: op };
        byKey.set(key, entry);
      }
      entry.lastOp = op;
      if (op === 'delete') {
        entry.delete = newest(entry.delete, hlc);
        continue;
      }
      if (op === 'insert') entry.insert = newest(entry.insert, hlc);
      const names = op === 'insert' ? codec.columns.map((c) => c.name) : Object.keys(JSON.parse(row ?? '{}'));
      for (const name of names) entry.columns.set(name, newest(entry.columns.get(name), hlc));
    }
    return pending;
  }

  /** True when no local write is pending at all. */
  get empty(): boolean {
    return this.rows.size === 0;
  }

  /** The pending writes to one row, by table name and `TableCodec.keyOf` key. */
  get(table: string, key: string): PendingRow | undefined {
    return this.rows.get(table)?.get(key);
  }

  /** True when the table has a pending write to any row. */
  touches(table: string): boolean {
    return this.rows.has(table);
  }
}
