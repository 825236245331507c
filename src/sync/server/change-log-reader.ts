import type { QueryScope } from '../../database/query-scope.js';
import { is } from '../../entity.js';
import { DatabaseError, UsageError } from '../../errors.js';
import type { SqlRunner } from '../../migrations/sql-runner.js';
import { CHANGE_COLUMNS } from './capture.js';

/**
 * One row change captured by the server's triggers, with the position the reader gave it.
 * `row` is the new row (the old one for a delete) as the trigger logged it, keyed by SQL column
 * name (bigint and numeric values as strings; `decodeLogRow` gives app values); `oldValues` holds,
 * for an update, the old values of the columns that changed; `oldPk` is set only when an update
 * changed the primary key. `hlc` is the stamp of the write; `origin` and `mutationId` name the
 * client and batch of a push, and are undefined for a write made straight to PostgreSQL.
 *
 * @example
 *   const change: CapturedChange = { tick: 7n, id: 12n, txid: 901n, table: 'todos', op: 'update',
 *     pk: { id: 'a1' }, oldPk: undefined, row: { id: 'a1', title: 'Milk' }, oldValues: { title: 'Tea' },
 *     hlc: '1700000000000-00000-postgres', origin: undefined, mutationId: undefined, changedAt: new Date(), bytes: 64 };
 */
export interface CapturedChange {
  readonly tick: bigint;
  readonly id: bigint;
  readonly txid: bigint;
  readonly table: string;
  readonly op: 'insert' | 'update' | 'delete';
  readonly pk: Record<string, unknown>;
  readonly oldPk: Record<string, unknown> | undefined;
  readonly row: Record<string, unknown>;
  readonly oldValues: Record<string, unknown> | undefined;
  readonly hlc: string;
  readonly origin: string | undefined;
  readonly mutationId: number | undefined;
  readonly changedAt: Date;
  /**
   * About how many bytes the change takes: the length of its logged JSON (key, row, old values),
   * what it costs in memory and in a message. Pages and the hub's window are budgeted with it.
   * Always set by the reader (optional for changes made by hand, which count as nothing).
   */
  readonly bytes?: number;
}

/**
 * What one `readNew()` numbered: the ticks after `from` up to and including `to`, in order
 * (`changes` holds them all, or the first ones when `readNew` was given a limit).
 *
 * @example
 *   const { from, to, changes } = await reader.readNew(); // changes.length === Number(to - from)
 */
export interface TickedBatch {
  readonly from: bigint;
  readonly to: bigint;
  readonly changes: CapturedChange[];
}

const OPS = { I: 'insert', U: 'update', D: 'delete' } as const;

/** The length of a logged JSON text (null when the column is NULL). */
function textLength(text: unknown): number {
  return typeof text === 'string' ? text.length : 0;
}

function toChange(r: Record<string, unknown>): CapturedChange {
  return {
    tick: BigInt(r.tick as string),
    id: BigInt(r.id as string),
    txid: BigInt(r.txid as string),
    table: r.table_name as string,
    op: OPS[(r.op as string).trim() as keyof typeof OPS],
    pk: JSON.parse(r.pk as string),
    oldPk: r.old_pk == null ? undefined : JSON.parse(r.old_pk as string),
    row: JSON.parse(r.row as string),
    oldValues: r.old_values == null ? undefined : JSON.parse(r.old_values as string),
    hlc: r.hlc as string,
    origin: (r.origin as string | null) ?? undefined,
    mutationId: r.mutation_id == null ? undefined : Number(r.mutation_id),
    changedAt: new Date(Number(r.changed_ms)),
    bytes: textLength(r.pk) + textLength(r.old_pk) + textLength(r.row) + textLength(r.old_values),
  };
}

/**
 * The bytes a change counts for in a page, in SQL: the length of its logged JSON texts, as
 * `CapturedChange.bytes` counts them once read.
 */
const LOGGED_BYTES = (c: string) =>
  `(octet_length(${c}.pk::text) + coalesce(octet_length(${c}.old_pk::text), 0) +
    octet_length(${c}."row"::text) + coalesce(octet_length(${c}.old_values::text), 0))::bigint`;

/**
 * The default byte budget of one page of the log: 1 MiB. A page stops at its row limit or when the
 * next change would take it past this many bytes, whichever comes first; a single change bigger
 * than the budget is a page of its own.
 */
export const DEFAULT_PAGE_BYTES = 1 << 20;

/**
 * The page after `after`: walks the ticks one by one from the first after `after` (ticks have no
 * gaps, so a pruned gap ends the walk), adding up each change's bytes, and stops before the change
 * that would pass `maxBytes` or at `limit` changes. Only the changes of the page are measured (one
 * more at most), so a huge log costs no more than the page read from it.
 */
async function ticksAfter(
  run: SqlRunner,
  after: bigint,
  limit: bigint | number,
  maxBytes: number,
): Promise<CapturedChange[]> {
  const rows = await run(
    `WITH RECURSIVE walk (tick, total, n) AS (
       SELECT t.tick, s.bytes, 1
         FROM (SELECT tick, change_id FROM _syncline_ticks WHERE tick > $1::bigint ORDER BY tick LIMIT 1) t
        CROSS JOIN LATERAL (SELECT ${LOGGED_BYTES('c')} AS bytes FROM _syncline_changes c WHERE c.id = t.change_id) s
       UNION ALL
       SELECT t.tick, w.total + s.bytes, w.n + 1
         FROM walk w JOIN _syncline_ticks t ON t.tick = w.tick + 1
        CROSS JOIN LATERAL (SELECT ${LOGGED_BYTES('c')} AS bytes FROM _syncline_changes c WHERE c.id = t.change_id) s
        WHERE w.n < $2::bigint AND w.total + s.bytes <= $3::bigint
     )
     SELECT ${CHANGE_COLUMNS} FROM walk w JOIN _syncline_ticks t ON t.tick = w.tick
       JOIN _syncline_changes c ON c.id = t.change_id ORDER BY t.tick`,
    [after.toString(), limit.toString(), String(maxBytes)],
  );
  return rows.map(toChange);
}

/**
 * Reads the change log that `installCapture()` fills, PgQ-style (docs/design.md section 4), and numbers
 * it with gap-free positions ("ticks") that clients use as cursors. Each `readNew()` takes
 * `pg_current_snapshot()` and ticks the changes whose transaction is visible in it but was not in
 * the snapshot of the previous read, so a transaction that commits late (after a later one) is
 * still read, once, at the next read. Ticks, the last tick and the last snapshot live in
 * PostgreSQL, and assigning runs under an advisory lock: several server instances (or a restarted
 * one) share one numbering without repeating or skipping a change. The reader keeps no state.
 *
 * @example
 *   const reader = new ChangeLogReader(db);
 *   const { to, changes } = await reader.readNew(); // on each 'syncline_changes' notification
 *   const page = await reader.readFrom(client.cursor, 500); // a client resuming after its cursor
 */
export class ChangeLogReader {
  constructor(private readonly db: QueryScope) {
    if (db.dialect.name !== 'postgres') throw new UsageError('ChangeLogReader reads a PostgreSQL change log');
  }

  /**
   * Ticks every change committed since the last read (by any instance) and returns them. Waits
   * while another reader is assigning. With `limit`, returns only the first `limit` of them, and
   * with `maxBytes` only as many as fit in that many bytes (at least one; the batch's `to` still
   * says how far the ticks go): the rest are read with `readFrom()`, page by page, so a huge
   * transaction is not held in memory at once.
   *
   * @example
   *   const batch = await reader.readNew(1000, 1 << 20);
   *   if (batch.to > batch.from) broadcast(batch.changes); // then readFrom(last tick) until batch.to
   */
  async readNew(limit?: number, maxBytes?: number): Promise<TickedBatch> {
    // One statement (the function `_syncline_read_new`, installed with the log): a transaction
    // of its own, one round trip. Its first row holds the batch's bounds, the others its changes;
    // the changes past the byte budget stay in PostgreSQL (they come with readFrom()).
    let rows: Record<string, unknown>[];
    try {
      rows = await this.runner()(
        maxBytes === undefined
          ? 'SELECT * FROM _syncline_read_new($1::bigint)'
          : `SELECT * FROM (
               SELECT r.*, sum(${LOGGED_BYTES('r')}) OVER (ORDER BY r.tick::bigint NULLS FIRST ROWS UNBOUNDED PRECEDING) AS running,
                      row_number() OVER (ORDER BY r.tick::bigint NULLS FIRST) AS n
                 FROM _syncline_read_new($1::bigint) r) s
              WHERE s.n <= 2 OR s.running <= $2::bigint ORDER BY s.n`,
        maxBytes === undefined
          ? [limit === undefined ? null : String(limit)]
          : [limit === undefined ? null : String(limit), String(maxBytes)],
      );
    } catch (error) {
      // 42883: no such function; 55000: no state row (both raised before anything was written).
      if (is(error, DatabaseError) && (error.code === '42883' || error.code === '55000')) {
        throw new UsageError('the change log is not installed; call installCapture() first', {
          cause: error,
        });
      }
      throw error;
    }
    const [bounds, ...changes] = rows;
    return {
      from: BigInt(bounds!.batch_from as string),
      to: BigInt(bounds!.batch_to as string),
      changes: changes.map(toChange),
    };
  }

  /**
   * The already-ticked changes after `cursor` (exclusive), in tick order: at most `limit` of them,
   * and no more than fit in `maxBytes` (default `DEFAULT_PAGE_BYTES`; the first change comes
   * whatever its size). Reads only: any instance can serve a client whatever instance ticked the
   * changes. The page ends early at a gap in the ticks (changes pruned meanwhile).
   *
   * @example
   *   let cursor = 0n;
   *   for (let page = await reader.readFrom(cursor, 500); page.length > 0; page = await reader.readFrom(cursor, 500))
   *     cursor = page[page.length - 1].tick;
   */
  async readFrom(cursor: bigint, limit = 1000, maxBytes = DEFAULT_PAGE_BYTES): Promise<CapturedChange[]> {
    if (cursor < 0n || limit < 1 || maxBytes < 1) {
      throw new UsageError('readFrom(cursor, limit, maxBytes): cursor >= 0, limit >= 1 and maxBytes >= 1');
    }
    return ticksAfter(this.runner(), cursor, limit, maxBytes);
  }

  /**
   * The cursors the log can serve, in one read: `last` is the last tick assigned, and `oldest` the
   * oldest cursor whose following changes are all kept. A client whose cursor is older missed
   * changes that `prune()` deleted, and needs a fresh snapshot.
   *
   * @example
   *   const { oldest, last } = await reader.keptRange();
   *   if (cursor < oldest || cursor > last) sendSnapshot();
   */
  async keptRange(): Promise<{ oldest: bigint; last: bigint }> {
    const [state] = await this.runner()(
      `SELECT coalesce((SELECT min(tick) - 1 FROM _syncline_ticks), last_tick)::text AS oldest,
              last_tick::text AS last
         FROM _syncline_reader_state WHERE id = 1`,
    );
    return state
      ? { oldest: BigInt(state.oldest as string), last: BigInt(state.last as string) }
      : { oldest: 0n, last: 0n };
  }

  /**
   * Deletes the ticked changes committed before `before`, oldest first, in pages of `pageSize`
   * (each its own short transaction, so writers and readers never wait long). Changes not ticked
   * yet are kept whatever their age, and so are the stamps and tombstones conflicts are settled
   * with. Ticks are in commit order while `changed_at` is when a transaction began, so the cut is
   * the first tick whose change began at `before` or later: everything ticked before it goes.
   * Returns how many changes were deleted and the oldest cursor still served.
   *
   * @example
   *   await reader.prune(new Date(Date.now() - 7 * 24 * 3600_000)); // keep a week
   */
  async prune(before: Date, pageSize = 10_000): Promise<{ changes: number; oldestCursor: bigint }> {
    const run = this.runner();
    const [cut] = await run(
      `SELECT coalesce(
           (SELECT t.tick - 1 FROM _syncline_ticks t JOIN _syncline_changes c ON c.id = t.change_id
             WHERE c.changed_at >= $1::timestamptz ORDER BY t.tick LIMIT 1),
           (SELECT last_tick FROM _syncline_reader_state WHERE id = 1))::text AS through`,
      [before.toISOString()],
    );
    const through = BigInt((cut?.through as string | null) ?? '0');
    let changes = 0;
    for (;;) {
      const [{ n }] = (await run(
        `WITH gone AS (
           DELETE FROM _syncline_ticks WHERE tick IN (
             SELECT tick FROM _syncline_ticks WHERE tick <= $1::bigint ORDER BY tick LIMIT $2::int)
           RETURNING change_id),
         deleted AS (DELETE FROM _syncline_changes WHERE id IN (SELECT change_id FROM gone) RETURNING 1)
         SELECT count(*)::int AS n FROM deleted`,
        [through.toString(), pageSize],
      )) as [{ n: number }];
      changes += n;
      if (n < pageSize) break;
    }
    return { changes, oldestCursor: (await this.keptRange()).oldest };
  }

  /** Runs one statement on any connection of the database, outside a transaction. */
  private runner(): SqlRunner {
    return async (text, params = []) => {
      const result = await this.db.run({ sql: text, params, arrayMode: false, needsBigInt: false });
      return result.rows as Record<string, unknown>[];
    };
  }
}
