import { describe, expect, it } from 'vitest';
import type { DriverResult } from '../../src/database/driver.js';
import { sqliteDialect } from '../../src/dialect/sqlite/sqlite-dialect.js';
import type { Run } from '../../src/sync/client/client-transaction.js';
import { RowWriter } from '../../src/sync/client/row-writer.js';
import { TableCodec } from '../../src/sync/client/table-codec.js';
import { WholeRowBatch } from '../../src/sync/client/whole-row-batch.js';
import { lists } from './client-helpers.js';

/**
 * Whole rows gathered into multi-row upserts: full batches in one statement, the rest in
 * statements of a power of two rows, rows in the order taken, and with an asynchronous driver the
 * parameters it was handed never written over while it may still read them.
 */

const codec = new TableCodec(lists, sqliteDialect);

interface Sent {
  readonly rows: number;
  readonly params: readonly unknown[];
}

/** A run that records each upsert and, when `async`, answers later, as SQLite WASM does. */
function recorder(async: boolean): { run: Run; sent: Sent[]; snapshots: unknown[][] } {
  const sent: Sent[] = [];
  const snapshots: unknown[][] = [];
  const run: Run = (sql, params = []) => {
    const rows = (sql.match(/\(\?, \?, \?\)/g) ?? []).length;
    sent.push({ rows, params });
    snapshots.push([...params]);
    const result: DriverResult = { rows: [], rowCount: rows };
    return async ? new Promise((resolve) => setTimeout(() => resolve(result), 1)) : result;
  };
  return { run, sent, snapshots };
}

const row = (i: number) => [`id-${i}`, `list ${i}`, 'u1'];

describe('whole-row batch', () => {
  for (const async of [false, true]) {
    it(`writes full batches, then the rest in powers of two, in order (${async ? 'asynchronous' : 'synchronous'} driver)`, async () => {
      const { run, sent, snapshots } = recorder(async);
      const batch = new WholeRowBatch(new RowWriter(codec), 3, 8);
      for (let i = 0; i < 21; i++) await batch.push(run, row(i));
      await batch.flush(run);
      expect(sent.map((s) => s.rows)).toEqual([8, 8, 4, 1]);
      expect(snapshots.flat()).toEqual(Array.from({ length: 21 }, (_, i) => row(i)).flat());
      // An asynchronous driver may read the parameters late: they are never written over.
      if (async) expect(sent.map((s) => [...s.params])).toEqual(snapshots);
      await batch.flush(run);
      expect(sent).toHaveLength(4);
    });
  }

  it('takes rows written straight into its parameters', () => {
    const { run, snapshots } = recorder(false);
    const batch = new WholeRowBatch(new RowWriter(codec), 3, 2);
    for (let i = 0; i < 3; i++) {
      batch.params.splice(batch.offset, 3, ...row(i));
      batch.take(run);
    }
    batch.flush(run);
    expect(snapshots).toEqual([[...row(0), ...row(1)], row(2)]);
  });
});
