import type { MaybePromise } from '../../database/driver.js';
import type { Run } from './client-transaction.js';
import type { RowWriter } from './row-writer.js';

/**
 * Whole rows of one table (every column present, as SQLite stores them) gathered into multi-row
 * upserts (`RowWriter.upsertWholeRows`) of up to `wanted` rows each, within SQLite's parameter
 * limit: one statement per batch instead of one per row. The rows go into one flat parameter
 * array that is reused, so a batch allocates nothing per row; a row is written straight into it
 * (`params` at `offset`, then `take`) or copied in (`push`). SQLite runs the rows of one statement
 * in order, so a key that comes twice ends as the later row left it, as with one upsert per row.
 * A batch is written when full and by `flush`; nothing is written before then, so a caller that
 * writes other rows in between flushes first to keep the order.
 *
 * @example
 *   const batch = new WholeRowBatch(writer, codec.columns.length, 500);
 *   for (const values of rows) await batch.push(run, values);
 *   await batch.flush(run);
 */
export class WholeRowBatch {
  /** The parameters of the rows taken so far, one row after the other. */
  params: unknown[];
  private readonly perStatement: number;
  private rows = 0;

  constructor(
    readonly writer: RowWriter,
    private readonly columns: number,
    wanted: number,
  ) {
    this.perStatement = writer.maxRowsPerStatement(wanted);
    this.params = new Array(this.perStatement * columns);
  }

  /** Where the next row's values go in `params`. */
  get offset(): number {
    return this.rows * this.columns;
  }

  /** Takes the row whose values were written at `offset`, and writes the batch when it is full. */
  take(run: Run): MaybePromise<void> {
    if (++this.rows < this.perStatement) return;
    return this.flush(run);
  }

  /** Copies a row's values (aligned with the codec's columns) in and takes it. */
  push(run: Run, values: readonly unknown[]): MaybePromise<void> {
    const offset = this.offset;
    for (let i = 0; i < this.columns; i++) this.params[offset + i] = values[i];
    return this.take(run);
  }

  /**
   * Writes the rows taken so far, if any: a full batch in one statement, fewer rows in statements
   * of a power of two rows each (at most one of each size), so a table's writes use a handful of
   * statement texts (each a prepared statement to cache) whatever the number of rows.
   */
  flush(run: Run): MaybePromise<void> {
    const params = this.params;
    const total = this.rows;
    this.rows = 0;
    let from = 0;
    const next = (): MaybePromise<void> => {
      while (from < total) {
        let rows = total - from;
        if (rows < this.perStatement) rows = 2 ** Math.floor(Math.log2(rows));
        const result = this.writer.upsertWholeRows(run, params, rows, from);
        from += rows;
        if (result instanceof Promise) return result.then(next);
      }
    };
    const done = next();
    // A synchronous driver is done with the array; an asynchronous one may still read it.
    if (done instanceof Promise) this.params = new Array(this.perStatement * this.columns);
    return done;
  }
}
