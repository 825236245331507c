import { expect, it } from 'vitest';
import {
  between,
  customType,
  type Database,
  eq,
  InvalidValueError,
  inArray,
  schema,
  sql,
  table,
  uuid,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { allTypes, typesSchema } from '../support/fixtures.js';

type TypesDb = Database<typeof typesSchema>;
type NewRow = typeof allTypes.$inferInsert;

const ids = [1, 2, 3, 4, 5].map((n) => `00000000-0000-4000-8000-00000000000${n}`);

/** Writes rows (each gets an id unless it brings one) and reads them back in the same order. */
async function roundTrip(db: TypesDb, rows: Omit<NewRow, 'id'>[]) {
  await db.insert(allTypes).values(rows.map((row, i) => ({ id: ids[i]!, ...row })));
  return db.select().from(allTypes).orderBy(allTypes.id);
}

async function rowCount(db: TypesDb): Promise<number> {
  const rows = await db.select({ id: allTypes.id }).from(allTypes);
  return rows.length;
}

dialectSuite('column types round-trip', (env) => {
  it('uuid: upper-case input is stored lower-case and found by either spelling', async () => {
    const db = await env.open(typesSchema);
    const upper = 'A3BB189E-8BF9-3888-9912-ACE4E6543002';
    await db.insert(allTypes).values({ id: upper });
    const rows = await db.select({ id: allTypes.id }).from(allTypes);
    expect(rows).toEqual([{ id: upper.toLowerCase() }]);
    const found = await db.select({ id: allTypes.id }).from(allTypes).where(eq(allTypes.id, upper));
    expect(found).toEqual([{ id: upper.toLowerCase() }]);
  });

  it('text: empty string, quotes, newlines, non-ASCII and emoji', async () => {
    const db = await env.open(typesSchema);
    const values = ['', `it's "quoted"\nand\ttabbed\\`, 'Grüße, 東京, Ελληνικά', '👩‍👩‍👧 🚀 a\u0301'];
    const rows = await roundTrip(
      db,
      values.map((text) => ({ text })),
    );
    expect(rows.map((r) => r.text)).toEqual(values);
  });

  it('integer: zero, negatives and the 32-bit limits come back as numbers', async () => {
    const db = await env.open(typesSchema);
    const values = [0, -1, 2147483647, -2147483648];
    const rows = await roundTrip(
      db,
      values.map((integer) => ({ integer })),
    );
    expect(rows.map((r) => r.integer)).toEqual(values);
    for (const r of rows) expect(typeof r.integer).toBe('number');
  });

  it('bigint: exact beyond 2^53, negative too, and usable in a comparison', async () => {
    const db = await env.open(typesSchema);
    const values = [2n ** 62n + 7n, -(2n ** 62n) - 7n, 2n ** 63n - 1n, -(2n ** 63n)];
    const rows = await roundTrip(
      db,
      values.map((bigint) => ({ bigint })),
    );
    expect(rows.map((r) => r.bigint)).toEqual(values);
    for (const r of rows) expect(typeof r.bigint).toBe('bigint');
    // 2^62 + 7 and 2^62 + 8 are the same double: only an exact comparison finds the right row.
    const found = await db
      .select({ id: allTypes.id })
      .from(allTypes)
      .where(eq(allTypes.bigint, 2n ** 62n + 7n));
    expect(found).toEqual([{ id: ids[0] }]);
    const none = await db
      .select({ id: allTypes.id })
      .from(allTypes)
      .where(eq(allTypes.bigint, 2n ** 62n + 8n));
    expect(none).toEqual([]);
  });

  it('real: fractions, negatives and large exponents keep double precision', async () => {
    const db = await env.open(typesSchema);
    const values = [0.1 + 0.2, -1234.5678, 1.7976931348623157e308, 5e-324];
    const rows = await roundTrip(
      db,
      values.map((real) => ({ real })),
    );
    expect(rows.map((r) => r.real)).toEqual(values);
  });

  it('boolean: true and false come back as booleans and compare as booleans', async () => {
    const db = await env.open(typesSchema);
    const rows = await roundTrip(db, [{ boolean: true }, { boolean: false }]);
    expect(rows.map((r) => r.boolean)).toEqual([true, false]);
    const falses = await db.select({ id: allTypes.id }).from(allTypes).where(eq(allTypes.boolean, false));
    expect(falses).toEqual([{ id: ids[1] }]);
  });

  it('timestamp: to the millisecond, before 1970 too, as a Date', async () => {
    const db = await env.open(typesSchema);
    const values = [
      new Date('2024-02-29T23:59:59.123Z'),
      new Date('1969-07-20T20:17:40.001Z'),
      new Date(0),
      new Date('2038-01-19T03:14:08.999Z'),
    ];
    const rows = await roundTrip(
      db,
      values.map((timestamp) => ({ timestamp })),
    );
    for (const [i, r] of rows.entries()) {
      expect(r.timestamp).toBeInstanceOf(Date);
      expect(r.timestamp!.toISOString()).toBe(values[i]!.toISOString());
    }
    const found = await db
      .select({ id: allTypes.id })
      .from(allTypes)
      .where(eq(allTypes.timestamp, new Date('2024-02-29T23:59:59.123Z')));
    expect(found).toEqual([{ id: ids[0] }]);
  });

  it('json: nested objects and arrays, non-ASCII text, and scalars', async () => {
    const db = await env.open(typesSchema);
    const values: unknown[] = [
      { name: 'Zoë 🎉', nested: { list: [1, 2.5, null, { deep: [true, false] }], empty: {} }, '': 'x' },
      [[], ['a', 'b'], { k: 'ü' }],
      'just a string',
      '42',
      42,
    ];
    const rows = await roundTrip(
      db,
      values.map((json) => ({ json })),
    );
    expect(rows.map((r) => r.json)).toEqual(values);
  });

  it('json: a not-null json column left out gets its default []', async () => {
    const db = await env.open(typesSchema);
    const rows = await roundTrip(db, [{}, { jsonList: ['a', 'ß'] }]);
    expect(rows.map((r) => r.jsonList)).toEqual([[], ['a', 'ß']]);
  });

  it('blob: bytes including zeros come back as a Uint8Array, empty blobs too', async () => {
    const db = await env.open(typesSchema);
    const bytes = new Uint8Array([0, 0, 1, 255, 0]);
    const rows = await roundTrip(db, [{ blob: bytes }, { blob: new Uint8Array(0) }]);
    expect(rows[0]!.blob).toBeInstanceOf(Uint8Array);
    expect(Array.from(rows[0]!.blob!)).toEqual([0, 0, 1, 255, 0]);
    expect(rows[1]!.blob).toBeInstanceOf(Uint8Array);
    expect(rows[1]!.blob!.length).toBe(0);
  });

  it('numeric: exact decimals as strings, beyond double precision', async () => {
    const db = await env.open(typesSchema);
    const values = ['12345678901234567890.123456789', '-0.000000000000000001', '0'];
    const rows = await roundTrip(
      db,
      values.map((numeric) => ({ numeric })),
    );
    expect(rows.map((r) => r.numeric)).toEqual(values);
  });

  it('enumOf: each allowed value round-trips', async () => {
    const db = await env.open(typesSchema);
    const rows = await roundTrip(db, [{ priority: 'low' }, { priority: 'high' }]);
    expect(rows.map((r) => r.priority)).toEqual(['low', 'high']);
  });

  it('null in every nullable column, left out or given explicitly', async () => {
    const db = await env.open(typesSchema);
    const nulls = {
      text: null,
      integer: null,
      bigint: null,
      real: null,
      boolean: null,
      timestamp: null,
      json: null,
      blob: null,
      numeric: null,
      priority: null,
      point: null,
    };
    const rows = await roundTrip(db, [{}, nulls]);
    expect(rows).toEqual([
      { id: ids[0], ...nulls, jsonList: [] },
      { id: ids[1], ...nulls, jsonList: [] },
    ]);
  });

  it('customType: each dialect encodes and decodes with its own functions', async () => {
    const db = await env.open(typesSchema);
    const rows = await roundTrip(db, [{ point: { x: 1.5, y: -2 } }, { point: { x: 0, y: 1e6 } }]);
    expect(rows.map((r) => r.point)).toEqual([
      { x: 1.5, y: -2 },
      { x: 0, y: 1e6 },
    ]);
    // What is stored shows which encoder ran: JSON text on SQLite, a POINT on PostgreSQL.
    const [stored] = await db.execute<{ p: string }>(
      env.driver.dialect === 'sqlite'
        ? sql`select ${allTypes.point} as p from ${allTypes} where ${allTypes.id} = ${ids[0]}`
        : sql`select ${allTypes.point}::text as p from ${allTypes} where ${allTypes.id} = ${ids[0]}`,
    );
    expect(stored!.p).toBe(env.driver.dialect === 'sqlite' ? '[1.5,-2]' : '(1.5,-2)');
  });
});

/** A custom type over 64-bit integer storage, its app value the decimal text (as a money amount might be). */
const cents = customType<{ data: string; driverData: unknown }>({
  name: 'cents',
  sqlType: { sqlite: 'INTEGER', postgres: 'BIGINT' },
  toDriver: { sqlite: (value) => BigInt(value), postgres: (value) => value },
  fromDriver: (value) => {
    // Within 2^53 the driver value is a number, as it always was; beyond, a bigint.
    if (typeof value !== 'number' && typeof value !== 'bigint' && typeof value !== 'string') {
      throw new Error(`unexpected ${typeof value}`);
    }
    return `${typeof value}:${value}`;
  },
});
const ledger = table('ledger', { id: uuid().primaryKey(), amount: cents() });
const ledgerSchema = schema({ ledger }, { version: 1 });

dialectSuite('custom types over 64-bit integers', (env) => {
  it('keep every digit beyond 2^53, and hand numbers to fromDriver within it', async () => {
    const db = await env.open(ledgerSchema);
    const values = ['9223372036854775807', '-9007199254740993', '42'];
    await db.insert(ledger).values(values.map((amount, i) => ({ id: ids[i]!, amount })));
    const rows = await db.select({ amount: ledger.amount }).from(ledger).orderBy(ledger.id);
    // node-postgres and PGlite hand int8 over as text; better-sqlite3 as a number or a bigint.
    expect(rows.map((r) => r.amount!.replace(/^\w+:/, ''))).toEqual(values);
    if (env.driver.dialect === 'sqlite') {
      expect(rows.map((r) => r.amount!.split(':')[0])).toEqual(['bigint', 'bigint', 'number']);
    }
  });
});

dialectSuite('column types reject wrong values', (env) => {
  const wrong: [string, Partial<Record<keyof NewRow, unknown>>, string][] = [
    ['a string into an integer', { integer: '12' }, 'all_types.integer'],
    ['a fraction into an integer', { integer: 1.5 }, 'all_types.integer'],
    ['an invalid Date into a timestamp', { timestamp: new Date('not a date') }, 'all_types.timestamp'],
    ['a string into a timestamp', { timestamp: '2024-01-01' }, 'all_types.timestamp'],
    ['a non-uuid into a uuid', { id: 'not-a-uuid' }, 'all_types.id'],
    ['a value outside the enum', { priority: 'medium' }, 'all_types.priority'],
    ['a number into a boolean', { boolean: 1 }, 'all_types.boolean'],
    ['a number beyond 2^53 into a bigint', { bigint: 2 ** 60 }, 'all_types.bigint'],
    ['a string into a blob', { blob: 'bytes' }, 'all_types.blob'],
    ['a non-number into a numeric', { numeric: '12abc' }, 'all_types.numeric'],
  ];

  for (const [what, values, columnName] of wrong) {
    it(`${what} fails with InvalidValueError naming ${columnName}, and nothing is written`, async () => {
      const db = await env.open(typesSchema);
      // The bad row comes second: the good row before it must not be written either.
      const rows = [{ id: ids[0]! }, { id: ids[1]!, ...values } as NewRow];
      const error = await db
        .insert(allTypes)
        .values(rows)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(InvalidValueError);
      expect((error as Error).message).toContain(columnName);
      expect(await rowCount(db)).toBe(0);
    });
  }

  it('an update with a wrong value fails before it reaches the database, leaving the row as it was', async () => {
    const db = await env.open(typesSchema);
    await db.insert(allTypes).values({ id: ids[0]!, integer: 7, boolean: true });
    await expect(
      db
        .update(allTypes)
        .set({ integer: 8, boolean: 'yes' as any })
        .where(eq(allTypes.id, ids[0]!)),
    ).rejects.toThrow(/all_types\.boolean/);
    const [row] = await db.select({ integer: allTypes.integer, boolean: allTypes.boolean }).from(allTypes);
    expect(row).toEqual({ integer: 7, boolean: true });
  });

  it('a wrong value compared with a column fails with InvalidValueError naming the column', async () => {
    const db = await env.open(typesSchema);
    const conditions = [
      eq(allTypes.integer, 'seven' as any),
      inArray(allTypes.integer, [1, 'seven' as any]),
      between(allTypes.integer, 1, 'seven' as any),
      eq(allTypes.id, 'nope'),
    ];
    for (const condition of conditions) {
      const error = await db
        .select()
        .from(allTypes)
        .where(condition)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(InvalidValueError);
      expect((error as Error).message).toMatch(/^all_types\.(integer|id): /);
    }
  });
});
