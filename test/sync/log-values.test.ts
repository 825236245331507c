import { expect, it } from 'vitest';
import { type AnyTable, customType, eq, schema, sql, table, text, timestamp, uuid } from '../../src/index.js';
import { encodeRow } from '../../src/sync/protocol/value-codec.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { ChangeLogReader } from '../../src/sync/server/change-log-reader.js';
import { decodeLogRow, logRowToJson } from '../../src/sync/server/log-values.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';
import { allTypes, allTypesEdges } from '../support/fixtures.js';
import { accounts, projects } from '../support/rich-schema.js';

/**
 * The change log keeps row images as JSON (bigint and numeric as strings, bytea as hex, timestamps
 * as ISO text). decodeLogRow must give back exactly what a normal select returns for the same
 * row, for every column kind, on PGlite and on the PostgreSQL server.
 */

/** A custom type over `timestamp without time zone`: its logged text carries no zone. */
const localStamp = customType<{ data: Date; driverData: Date | string }>({
  name: 'local_stamp',
  sqlType: { sqlite: 'TEXT', postgres: 'TIMESTAMP' },
  toDriver: (d) => d.toISOString().replace('Z', ''),
  fromDriver: (v) => (v instanceof Date ? v : new Date(`${String(v).replace(' ', 'T')}Z`)),
});

const events = table('events', {
  id: uuid().primaryKey(),
  name: text(),
  at: localStamp('at'),
  stamped: timestamp(),
});

const logSchema = schema({ allTypes, accounts, projects, events });

function bySqlName(table: AnyTable, row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(table.$columnList.map((c) => [c.name, row[c.key]]));
}

const ids = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];

dialectSuite(
  'change log values',
  (env) => {
    async function open() {
      const db = await env.open(logSchema);
      await installCapture(db, logSchema.tableList);
      return { db, reader: new ChangeLogReader(db) };
    }

    it('decodes every column kind to the value a select returns', async () => {
      const { db, reader } = await open();
      await db.insert(allTypes).values([{ ...allTypesEdges, id: ids[0]!.toUpperCase() }, { id: ids[1]! }]);
      await db
        .update(allTypes)
        .set({ bigint: -(2n ** 63n), numeric: '-0.5' })
        .where(eq(allTypes.id, ids[0]!));
      const { changes } = await reader.readNew();
      const selected = await db.select().from(allTypes).orderBy(allTypes.id);
      const now = selected.map((row) => bySqlName(allTypes, row));
      expect(changes.map((c) => c.op)).toEqual(['insert', 'insert', 'update']);
      expect(decodeLogRow(allTypes, changes[1]!.row)).toEqual(now[1]);
      expect(decodeLogRow(allTypes, changes[2]!.row)).toEqual(now[0]);
      expect(logRowToJson(allTypes, changes[2]!.row)).toEqual(encodeRow(allTypes, now[0]!));
      // Exact decimals are logged as strings, so nothing past 2^53 is rounded on the way.
      expect(changes[0]!.row.bigint).toBe('9223372036854775807');
      expect(changes[2]!.oldValues).toEqual({
        bigint: '9223372036854775807',
        numeric: '12345678901234567890.123456789000',
      });
      expect(decodeLogRow(allTypes, changes[2]!.oldValues!)).toEqual({
        bigint: 2n ** 63n - 1n,
        numeric: '12345678901234567890.123456789000',
      });
    });

    it('decodes defaults, foreign keys and every kind of the rich schema, and deletes', async () => {
      const { db, reader } = await open();
      const [account] = await db
        .insert(accounts)
        .values({ email: 'a@x', handle: 'a', avatar: new Uint8Array([9]), location: { x: 0, y: 0 } })
        .returning();
      await db.insert(projects).values({ id: 1, ownerId: account!.id });
      await db.delete(projects).where(eq(projects.id, 1));
      const { changes } = await reader.readNew();
      expect(decodeLogRow(accounts, changes[0]!.row)).toEqual(bySqlName(accounts, account!));
      const project = decodeLogRow(projects, changes[2]!.row);
      expect(project).toMatchObject({ size: 5n, budget: '10.50', logo: new Uint8Array([1, 2]), tags: [] });
      expect(project.starts_at).toEqual(new Date('2024-01-02T03:04:05.678Z'));
      expect(changes[2]!.op).toBe('delete');
    });

    it('reads values written by raw SQL: microseconds, NaN, infinities, zone-less timestamps', async () => {
      const { db, reader } = await open();
      await db.transaction(async (tx) => {
        // Another session's time zone must not move the instant.
        await tx.execute(sql`set local timezone = 'Asia/Kathmandu'`);
        await tx.execute(sql`insert into all_types (id, timestamp, real, numeric)
          values (${ids[0]}, '2024-01-02 03:04:05.123987+00', 'NaN', 'NaN'),
                 (${ids[1]}, '1969-12-31 23:59:59.5-02:30', '-Infinity', '1e-20')`);
        await tx.execute(sql`insert into events (id, at, stamped) values
          (${ids[0]}, '2024-05-06 07:08:09.25', '1901-01-01 00:00:00+00')`);
      });
      const { changes } = await reader.readNew();
      const types = (await db.select().from(allTypes).orderBy(allTypes.id)).map((r) =>
        bySqlName(allTypes, r),
      );
      const [event] = await db.select().from(events);
      expect(decodeLogRow(allTypes, changes[0]!.row)).toEqual(types[0]);
      expect(decodeLogRow(allTypes, changes[1]!.row)).toEqual(types[1]);
      expect(types[0]!.timestamp).toEqual(new Date('2024-01-02T03:04:05.123Z'));
      expect(types[1]!.real).toBe(Number.NEGATIVE_INFINITY);
      const loggedEvent = decodeLogRow(events, changes[2]!.row);
      expect(loggedEvent.at).toEqual(new Date('2024-05-06T07:08:09.250Z'));
      expect(loggedEvent.stamped).toEqual(event!.stamped);
      expect(loggedEvent.stamped).toEqual(new Date('1901-01-01T00:00:00Z'));
    });

    it('skips logged keys that are not columns of the schema', async () => {
      const { db, reader } = await open();
      await db.execute(sql`alter table events add column extra int default 7`);
      await db.insert(events).values({ id: ids[0]!, name: 'x' });
      const { changes } = await reader.readNew();
      expect(changes[0]!.row.extra).toBe(7);
      expect(decodeLogRow(events, changes[0]!.row)).toEqual({
        id: ids[0],
        name: 'x',
        at: null,
        stamped: null,
      });
    });
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);

it('decodes the escape output format of bytea and refuses values of the wrong kind', () => {
  expect(decodeLogRow(allTypes, { blob: 'a\\000\\\\\\377' }).blob).toEqual(new Uint8Array([97, 0, 92, 255]));
  expect(decodeLogRow(allTypes, { bigint: 42 }).bigint).toBe(42n);
  // Offsets with seconds (local mean time before 1920) and years below 100 (which Date.UTC would
  // move to the 1900s).
  expect(decodeLogRow(events, { stamped: '0099-01-01T05:41:16+05:41:16' }).stamped).toEqual(
    new Date('0099-01-01T00:00:00Z'),
  );
  expect(() => decodeLogRow(allTypes, { bigint: true })).toThrow(/all_types\.bigint: expected a 64-bit/);
  expect(() => decodeLogRow(allTypes, { timestamp: 5 })).toThrow(/expected an ISO timestamp/);
});
