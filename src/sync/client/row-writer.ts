import type { DriverResult, MaybePromise } from '../../database/driver.js';
import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import type { Run } from './client-transaction.js';
import type { TableCodec } from './table-codec.js';

/** SQLite's default limit of bound parameters per statement (SQLITE_MAX_VARIABLE_NUMBER). */
const MAX_PARAMETERS = 32_766;

/**
 * Writes server rows into one table with SQL built once per shape of write and reused: the driver
 * keeps statements prepared by their text, so a stable text is a cached prepared statement. Values
 * are the ones SQLite stores (`TableCodec.storageRow`), aligned with the codec's columns, with
 * `undefined` for a column the change does not carry. `keep` holds the positions of columns whose
 * local value must stay (pending local writes): they are written only when the row is new.
 *
 * @example
 *   const writer = new RowWriter(codec);
 *   writer.upsert(run, codec.storageRow(row), undefined);
 */
export class RowWriter {
  private readonly sql = new Map<string, string>();
  private readonly table: string;
  private readonly names: string[];
  private readonly keyWhere: string;
  private readonly conflict: string;
  private readonly keyIndexes: ReadonlySet<number>;
  private readonly allColumns: readonly number[];

  constructor(private readonly codec: TableCodec) {
    this.table = quoteIdentifier(codec.name);
    this.names = codec.columns.map((c) => quoteIdentifier(c.name));
    this.keyWhere = codec.keyIndexes.map((i) => `${this.names[i]} = ?`).join(' AND ');
    this.conflict = codec.keyIndexes.map((i) => this.names[i]).join(', ');
    this.keyIndexes = new Set(codec.keyIndexes);
    this.allColumns = codec.columns.map((_, i) => i);
  }

  /** How many whole rows one multi-row upsert may carry, within SQLite's parameter limit. */
  maxRowsPerStatement(wanted: number): number {
    return Math.max(1, Math.min(wanted, Math.floor(MAX_PARAMETERS / this.names.length)));
  }

  private cached(key: string, build: () => string): string {
    let text = this.sql.get(key);
    if (text === undefined) this.sql.set(key, (text = build()));
    return text;
  }

  private upsertSql(present: readonly number[], keep: ReadonlySet<number> | undefined, rows: number): string {
    const key = `u${rows}:${present.join(',')}:${keep ? [...keep].join(',') : ''}`;
    return this.cached(key, () => {
      const one = `(${present.map(() => '?').join(', ')})`;
      const set = present
        .filter((i) => !this.keyIndexes.has(i) && !keep?.has(i))
        .map((i) => `${this.names[i]} = excluded.${this.names[i]}`);
      const action = set.length === 0 ? 'NOTHING' : `UPDATE SET ${set.join(', ')}`;
      return `INSERT INTO ${this.table} (${present.map((i) => this.names[i]).join(', ')}) VALUES ${Array(rows).fill(one).join(', ')} ON CONFLICT (${this.conflict}) DO ${action}`;
    });
  }

  private presentOf(values: readonly unknown[]): number[] {
    const present: number[] = [];
    for (let i = 0; i < values.length; i++) if (values[i] !== undefined) present.push(i);
    return present;
  }

  /** Inserts the row, or updates the columns it carries (except `keep`) when its key exists. */
  upsert(
    run: Run,
    values: readonly unknown[],
    keep: ReadonlySet<number> | undefined,
  ): MaybePromise<DriverResult> {
    const present = this.presentOf(values);
    return run(
      this.upsertSql(present, keep, 1),
      present.map((i) => values[i]),
    );
  }

  /**
   * Upserts `rows` whole rows (every column present) in one statement; `params` holds storage
   * values one row after the other, and the rows written are those from row `from` on (the rest of
   * `params` is not sent).
   */
  upsertWholeRows(run: Run, params: unknown[], rows: number, from = 0): MaybePromise<DriverResult> {
    const columns = this.names.length;
    const size = rows * columns;
    return run(
      this.upsertSql(this.allColumns, undefined, rows),
      from === 0 && params.length === size ? params : params.slice(from * columns, from * columns + size),
    );
  }

  /**
   * Updates the columns the change carries (except key columns and `keep`) of an existing row; a
   * missing row stays missing. Returns undefined when no column is left to write.
   */
  update(
    run: Run,
    values: readonly unknown[],
    keep: ReadonlySet<number> | undefined,
  ): MaybePromise<DriverResult> | undefined {
    const set = this.presentOf(values).filter((i) => !this.keyIndexes.has(i) && !keep?.has(i));
    if (set.length === 0) return undefined;
    const text = this.cached(`s${set.join(',')}`, () => {
      const assignments = set.map((i) => `${this.names[i]} = ?`).join(', ');
      return `UPDATE ${this.table} SET ${assignments} WHERE ${this.keyWhere}`;
    });
    return run(text, [...set.map((i) => values[i]), ...this.codec.keyIndexes.map((i) => values[i])]);
  }

  /** Deletes the row with these key values (in key column order); a missing row is no error. */
  delete(run: Run, key: readonly unknown[]): MaybePromise<DriverResult> {
    return run(
      this.cached('d', () => `DELETE FROM ${this.table} WHERE ${this.keyWhere}`),
      key,
    );
  }

  /** Every key in the table, as SQLite stores them (64-bit integers as bigint), in key order. */
  selectKeys(run: Run): MaybePromise<DriverResult> {
    const text = this.cached('k', () => `SELECT ${this.conflict} FROM ${this.table}`);
    return run(text, [], { arrayMode: true, bigInts: true });
  }
}
