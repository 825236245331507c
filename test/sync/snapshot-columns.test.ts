import { describe, expect, it } from 'vitest';
import {
  type AnyTable,
  bigint,
  boolean,
  type Database,
  integer,
  SyncProtocolError,
  schema,
  sql,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';
import {
  columnChunkToRows,
  parseServerFrame,
  type SnapshotColumnsMessage,
  type SnapshotMessage,
} from '../../src/sync/protocol/messages.js';
import { encodeRow, type JsonRow } from '../../src/sync/protocol/value-codec.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { readSnapshot } from '../../src/sync/server/snapshot-reader.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';
import { allTypes, allTypesEdges } from '../support/fixtures.js';
import { openReplica, uuidOf } from './client-helpers.js';

/**
 * Snapshot chunks by column (`SnapshotColumnsSchema`), for clients that list the format in their
 * hello: PostgreSQL builds the JSON of a chunk whose every column it can encode, JavaScript the
 * others, and either way each row is what `encodeRow` makes of the row a select returns. The client
 * validates the frame as strictly as any message and writes nothing of a chunk it cannot read.
 */

/** Every kind PostgreSQL encodes for the wire itself. */
const wireKinds = table('wire_kinds', {
  id: uuid().primaryKey(),
  text: text(),
  integer: integer(),
  bigint: bigint(),
  boolean: boolean(),
  timestamp: timestamp(),
});
const columnsSchema = schema({ wireKinds, allTypes });

function bySqlName(t: AnyTable, row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(t.$columnList.map((c) => [c.name, row[c.key]]));
}

const byId = (a: JsonRow, b: JsonRow) => String(a.id).localeCompare(String(b.id));

/** A snapshot of `t` as a client that reads chunks by column gets it, two rows per chunk. */
async function columnSnapshot(db: Database, t: AnyTable) {
  const frames: { text?: string; columns?: SnapshotColumnsMessage; rows?: SnapshotMessage }[] = [];
  await readSnapshot(
    db,
    [{ id: 's', table: t, where: undefined }],
    {
      send: (m) => void frames.push({ rows: m }),
      sendColumns: (m) => void frames.push({ columns: m }),
      sendText: (text) => void frames.push({ text }),
      drained: async () => {},
      aborted: () => false,
    },
    2,
  );
  // Each frame as the client reads it off the socket.
  const chunks = frames.map((f) => parseServerFrame(f.text ?? JSON.stringify(f.columns ?? f.rows)));
  const rows = chunks.flatMap((c) => ('rows' in c ? c.rows : 'values' in c ? columnChunkToRows(c) : []));
  return { frames, chunks, rows };
}

dialectSuite(
  'snapshot chunks by column',
  (env) => {
    async function open(): Promise<Database> {
      const db = await env.open(columnsSchema);
      await installCapture(db, columnsSchema.tableList);
      return db;
    }

    it('PostgreSQL builds them for the kinds it encodes, each row as encodeRow of a select', async () => {
      const db = await open();
      await db.transaction(async (tx) => {
        await tx.execute(sql`set local timezone = 'Asia/Kathmandu'`);
        await tx.execute(sql`insert into wire_kinds (id, text, integer, bigint, boolean, timestamp) values
          ('00000000-0000-4000-8000-00000000000A', 'ünïcödé "quoted" \\ back
new line 😀', -2147483648, '-9223372036854775808', true, '2024-01-02 03:04:05.123987+00'),
          ('00000000-0000-4000-8000-000000000002', '', 2147483647, '9223372036854775807', false, '1969-12-31 23:59:59.9995+00'),
          ('00000000-0000-4000-8000-000000000003', 'x', 0, '9007199254740993', null, '1800-06-01 12:00:00 Europe/Amsterdam'),
          ('00000000-0000-4000-8000-000000000004', null, null, null, null, '0100-03-01 00:00:00+00'),
          ('00000000-0000-4000-8000-000000000006', null, null, null, null, null)`);
      });
      const { frames, chunks, rows } = await columnSnapshot(db, wireKinds);
      expect(frames.every((f) => f.text !== undefined)).toBe(true);
      expect(chunks.map((c) => ('values' in c ? c.values[0]!.length : -1))).toEqual([2, 2, 1]);
      const selected = await db.select().from(wireKinds);
      expect(rows.sort(byId)).toEqual(
        selected.map((row) => encodeRow(wireKinds, bySqlName(wireKinds, row))).sort(byId),
      );
      expect(rows.find((r) => r.id === '00000000-0000-4000-8000-000000000002')!.timestamp).toBe(-1);
    });

    it('JavaScript encodes them for the other kinds, each row as encodeRow of a select', async () => {
      const db = await open();
      await db
        .insert(allTypes)
        .values([
          { ...allTypesEdges, id: '00000000-0000-4000-8000-00000000000A' },
          { id: '00000000-0000-4000-8000-000000000002' },
          { id: '00000000-0000-4000-8000-000000000003', bigint: -(2n ** 63n), json: null, text: '' },
        ]);
      const { frames, rows } = await columnSnapshot(db, allTypes);
      expect(frames.map((f) => Object.keys(f)[0])).toEqual(['columns', 'columns']);
      const selected = await db.select().from(allTypes);
      expect(rows.sort(byId)).toEqual(
        selected.map((row) => encodeRow(allTypes, bySqlName(allTypes, row))).sort(byId),
      );
    });

    it('fails on an infinite timestamp as the rows form does', async () => {
      const db = await open();
      await db.execute(
        sql`insert into wire_kinds (id, timestamp) values ('00000000-0000-4000-8000-000000000001', 'infinity')`,
      );
      await expect(columnSnapshot(db, wireKinds)).rejects.toThrow(/wire_kinds.timestamp \(timestamp\)/);
    });

    it('an empty shape sends one empty last chunk', async () => {
      const db = await open();
      const { chunks } = await columnSnapshot(db, wireKinds);
      expect(chunks).toHaveLength(1);
      expect(chunks[0]).toMatchObject({ last: true, totalRows: 0, values: [[], [], [], [], [], []] });
    });
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);

const frame = (fields: Record<string, unknown>) =>
  JSON.stringify({
    type: 'snapshot',
    v: 1,
    shapeId: 'lists',
    position: '40',
    chunk: 0,
    last: true,
    totalRows: 2,
    columns: ['id', 'name', 'owner_id'],
    values: [
      [uuidOf(1), uuidOf(2)],
      ['a', 'b'],
      ['u1', 'u1'],
    ],
    ...fields,
  });

describe('reading a chunk by column', () => {
  it('takes a well-formed one as it is', () => {
    const chunk = parseServerFrame(frame({})) as SnapshotColumnsMessage;
    expect(columnChunkToRows(chunk)).toEqual([
      { id: uuidOf(1), name: 'a', owner_id: 'u1' },
      { id: uuidOf(2), name: 'b', owner_id: 'u1' },
    ]);
  });

  it.each([
    [
      'a column shorter than the others',
      { values: [[uuidOf(1), uuidOf(2)], ['a'], ['u1', 'u1']] },
      /values\[1\]: holds 1 values/,
    ],
    ['more columns of values than columns', { values: [[], [], [], []] }, /4 columns of values for 3/],
    ['a column named twice', { columns: ['id', 'id', 'owner_id'] }, /named twice/],
    ['an empty column name', { columns: ['id', '', 'owner_id'] }, /columns\[1\]: cannot be empty/],
    ['values that are not arrays', { values: [1, 2, 3] }, /values\[0\]: expected array/],
    ['rows beside the columns', { rows: [] }, /rows/],
  ])('refuses %s with a clear protocol error', (_what, fields, message) => {
    expect(() => parseServerFrame(frame(fields))).toThrow(SyncProtocolError);
    expect(() => parseServerFrame(frame(fields))).toThrow(message);
  });

  it('a client writes no row of a chunk with a column its table lacks', async () => {
    const { db, replica } = await openReplica();
    try {
      const snapshot = replica.snapshot([{ id: 'lists', table: 'lists' }], 'key', undefined);
      const bad = parseServerFrame(
        frame({ columns: ['id', 'name', 'nope'], values: [[uuidOf(1)], ['a'], ['x']] }),
      ) as SnapshotColumnsMessage;
      // As with a row of the row form: refused row by row, reported, and the rest goes on.
      const refused = await snapshot.apply(bad);
      expect(refused.failed.map((e) => e.message)).toEqual([expect.stringMatching(/no column "nope"/)]);
      expect(await db.execute(sql`select count(*) as n from lists`)).toEqual([{ n: 0 }]);
      const good = parseServerFrame(frame({})) as SnapshotColumnsMessage;
      const applied = await replica.snapshot([{ id: 'lists', table: 'lists' }], 'key', undefined).apply(good);
      expect(applied).toMatchObject({ done: true, cursor: '40', progress: { rows: 2, totalRows: 2 } });
    } finally {
      await db.close();
    }
  });
});
