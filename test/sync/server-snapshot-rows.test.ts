import { expect, it } from 'vitest';
import { type AnyTable, type Database, schema, sql } from '../../src/index.js';
import type { SnapshotMessage } from '../../src/sync/protocol/messages.js';
import { encodeRow, type JsonRow } from '../../src/sync/protocol/value-codec.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { readSnapshot } from '../../src/sync/server/snapshot-reader.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';
import { allTypes, allTypesEdges } from '../support/fixtures.js';

/**
 * The rows of a snapshot: each one is what `encodeRow` makes of the row a select returns, for every
 * column kind, nulls included, on PGlite and on the PostgreSQL server, however the chunks fall.
 */

const snapshotSchema = schema({ allTypes });

function bySqlName(table: AnyTable, row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(table.$columnList.map((c) => [c.name, row[c.key]]));
}

/** Every row of a snapshot of `all_types`, read two rows per chunk. */
async function snapshotRows(db: Database): Promise<{ rows: number; sent: SnapshotMessage[] }> {
  const sent: SnapshotMessage[] = [];
  const { rows } = await readSnapshot(
    db,
    [{ id: 'all', table: allTypes, where: undefined }],
    { send: (m) => sent.push(m), drained: async () => {}, aborted: () => false },
    2,
  );
  return { rows, sent };
}

const byId = (a: JsonRow, b: JsonRow) => String(a.id).localeCompare(String(b.id));

dialectSuite(
  'snapshot rows',
  (env) => {
    async function open(): Promise<Database> {
      const db = await env.open(snapshotSchema);
      await installCapture(db, snapshotSchema.tableList);
      return db;
    }

    it('sends every row as encodeRow of what a select returns', async () => {
      const db = await open();
      await db
        .insert(allTypes)
        .values([
          { ...allTypesEdges, id: '00000000-0000-4000-8000-00000000000A' },
          { id: '00000000-0000-4000-8000-000000000002' },
          { id: '00000000-0000-4000-8000-000000000003', bigint: -(2n ** 63n), json: null, text: '' },
        ]);
      const { rows, sent } = await snapshotRows(db);
      const selected = await db.select().from(allTypes);
      expect(rows).toBe(3);
      expect(sent.map((m) => m.rows.length)).toEqual([2, 1]);
      expect(sent.flatMap((m) => m.rows).sort(byId)).toEqual(
        selected.map((row) => encodeRow(allTypes, bySqlName(allTypes, row))).sort(byId),
      );
    });

    it('sends timestamps as a select reads them, whatever their precision, zone or era', async () => {
      const db = await open();
      await db.transaction(async (tx) => {
        await tx.execute(sql`set local timezone = 'Asia/Kathmandu'`);
        await tx.execute(sql`insert into all_types (id, timestamp) values
          ('00000000-0000-4000-8000-000000000001', '2024-01-02 03:04:05.123987+00'),
          ('00000000-0000-4000-8000-000000000002', '1969-12-31 23:59:59.9995+00'),
          ('00000000-0000-4000-8000-000000000003', '1800-06-01 12:00:00 Europe/Amsterdam'),
          ('00000000-0000-4000-8000-000000000004', '0099-12-31 23:59:59+00')`);
      });
      const selected = new Map((await db.select().from(allTypes)).map((r) => [r.id, r.timestamp!.getTime()]));
      const sent = new Map(
        (await snapshotRows(db)).sent.flatMap((m) => m.rows).map((r) => [r.id, r.timestamp]),
      );
      expect(sent).toEqual(selected);
      expect(sent.get('00000000-0000-4000-8000-000000000002')).toBe(-1);
    });

    it('fails on an infinite timestamp as encoding the selected row does', async () => {
      const db = await open();
      await db.execute(
        sql`insert into all_types (id, timestamp) values ('00000000-0000-4000-8000-000000000001', 'infinity')`,
      );
      const [row] = await db.select().from(allTypes);
      let expected = '';
      try {
        encodeRow(allTypes, bySqlName(allTypes, row!));
      } catch (error) {
        expected = (error as Error).message;
      }
      expect(expected).toMatch(/all_types.timestamp \(timestamp\)/);
      await expect(snapshotRows(db)).rejects.toThrow(expected);
    });
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);
