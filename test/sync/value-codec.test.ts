import { describe, expect, it } from 'vitest';
import { postgresPhysicalType } from '../../src/dialect/postgres/postgres-types.js';
import { sqlitePhysicalType } from '../../src/dialect/sqlite/sqlite-types.js';
import { SyncProtocolError } from '../../src/errors.js';
import {
  bigint,
  blob,
  boolean,
  customType,
  enumOf,
  integer,
  json,
  numeric,
  real,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';
import type { ColumnType } from '../../src/schema/column-type.js';
import {
  columnEncoder,
  decodeRow,
  decodeValue,
  encodeRow,
  encodeValue,
  valueDecoder,
} from '../../src/sync/protocol/value-codec.js';

/**
 * Column values travel between SQLite clients and the PostgreSQL server as JSON. Whatever a
 * value's type, encoding it, sending it through JSON.stringify/JSON.parse and decoding it must
 * give back an equal value, and a value of the wrong shape must fail with an error that says
 * which column and what was wrong.
 */

const point = customType<{ data: { x: number; y: number }; driverData: string }>({
  name: 'point',
  sqlType: 'TEXT',
  toDriver: (p) => JSON.stringify(p),
  fromDriver: (s) => JSON.parse(s),
});

const everything = table('everything', {
  id: uuid().primaryKey(),
  title: text(),
  position: integer(),
  byteCount: bigint('byte_count'),
  score: real(),
  done: boolean(),
  updatedAt: timestamp('updated_at'),
  meta: json<unknown>(),
  avatar: blob(),
  price: numeric(),
  priority: enumOf(['low', 'high']),
  at: point('at'),
});

const types = Object.fromEntries(everything.$columnList.map((c) => [c.key, c.type])) as Record<
  keyof typeof everything.$columns,
  ColumnType
>;

/** What the other side of a WebSocket gets: encoded, serialized, parsed, decoded. */
function overTheWire(type: ColumnType, value: unknown): unknown {
  return decodeValue(type, JSON.parse(JSON.stringify(encodeValue(type, value))));
}

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
const T0 = 1_700_000_000_123;

/** Values of every column type that must come back equal. */
const samples: Record<keyof typeof types, unknown[]> = {
  id: ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '00000000-0000-0000-0000-000000000000'],
  title: ['', 'Milk', 'Zoë says "hi" \\ \n\t 日本語 🎉'],
  position: [0, 1, -1, 2147483647, -2147483648],
  byteCount: [0n, 1n, -42n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n)],
  score: [0, 0.1, -2.5, 1e308, -1.7976931348623157e308, 5e-324, 2 ** 53 + 2],
  done: [true, false],
  updatedAt: [new Date(T0), new Date(0), new Date(-1), new Date(8.64e15), new Date(-8.64e15)],
  meta: [
    { name: 'Zoë', tags: ['日本', '🎉', 'ñ'], nested: { deep: [1, [2.5, { x: null }]], flag: false } },
    [],
    {},
    'just a string',
    42,
    true,
    [null, '', 0],
  ],
  avatar: [new Uint8Array(0), new Uint8Array([0]), new Uint8Array([0, 0, 0, 0]), allBytes, allBytes.slice(1)],
  price: ['0', '-123.4500', '1e-10', '12345678901234567890.123456789'],
  priority: ['low', 'high'],
  at: [
    { x: 1, y: 2 },
    { x: -0.5, y: 1e100 },
  ],
};

describe('every column type round-trips through JSON', () => {
  for (const [key, values] of Object.entries(samples) as [keyof typeof types, unknown[]][]) {
    it(`${types[key].kind} (${key})`, () => {
      for (const value of values) {
        const back = overTheWire(types[key], value);
        expect(back).toEqual(value);
        if (value instanceof Date) expect((back as Date).getTime()).toBe(value.getTime());
        if (value instanceof Uint8Array) expect((back as Uint8Array).constructor).toBe(Uint8Array);
      }
    });
  }

  it('null, for every column type', () => {
    for (const type of Object.values(types)) {
      expect(encodeValue(type, null)).toBeNull();
      expect(overTheWire(type, null)).toBeNull();
    }
  });

  it('can be written back by both dialects and re-encodes the same', () => {
    for (const dialect of [sqlitePhysicalType, postgresPhysicalType]) {
      for (const [key, values] of Object.entries(samples) as [keyof typeof types, unknown[]][]) {
        const type = types[key];
        const physical = dialect(type);
        for (const value of values) {
          let stored = physical.toDriver(overTheWire(type, value));
          // node-postgres and PGlite parse jsonb themselves before fromDriver sees it.
          if (dialect === postgresPhysicalType && type.kind === 'json') stored = JSON.parse(stored as string);
          expect(encodeValue(type, physical.fromDriver(stored))).toEqual(encodeValue(type, value));
        }
      }
    }
  });
});

describe('the encoded forms', () => {
  it('bigint is a decimal string, exact beyond 2^53', () => {
    expect(encodeValue(types.byteCount, 2n ** 53n + 1n)).toBe('9007199254740993');
    expect(encodeValue(types.byteCount, -(2n ** 63n))).toBe('-9223372036854775808');
    expect(encodeValue(types.byteCount, 7)).toBe('7');
  });

  it('timestamp is whole ms since the epoch', () => {
    expect(encodeValue(types.updatedAt, new Date('2023-11-14T22:13:20.123Z'))).toBe(1_700_000_000_123);
  });

  it('blob is padded standard base64', () => {
    expect(encodeValue(types.avatar, new Uint8Array([]))).toBe('');
    expect(encodeValue(types.avatar, new Uint8Array([0]))).toBe('AA==');
    expect(encodeValue(types.avatar, new Uint8Array([0, 255]))).toBe('AP8=');
    expect(encodeValue(types.avatar, new Uint8Array([251, 255, 191]))).toBe('+/+/');
    expect(encodeValue(types.avatar, allBytes)).toBe(btoa(String.fromCharCode(...allBytes)));
  });

  it('uuid is lower-cased', () => {
    const upper = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11';
    expect(encodeValue(types.id, upper)).toBe(upper.toLowerCase());
    expect(decodeValue(types.id, upper)).toBe(upper.toLowerCase());
  });

  it('real -0 becomes 0, as JSON would make it anyway', () => {
    expect(Object.is(encodeValue(types.score, -0), 0)).toBe(true);
  });

  it("real's infinities travel as strings (JSON has none) and come back as numbers", () => {
    expect(encodeValue(types.score, Number.POSITIVE_INFINITY)).toBe('Infinity');
    expect(encodeValue(types.score, Number.NEGATIVE_INFINITY)).toBe('-Infinity');
    expect(decodeValue(types.score, 'Infinity')).toBe(Number.POSITIVE_INFINITY);
    expect(decodeValue(types.score, '-Infinity')).toBe(Number.NEGATIVE_INFINITY);
    expect(() => decodeValue(types.score, Number.POSITIVE_INFINITY)).toThrow(/finite number/);
  });

  it('json is the JSON value the database would store', () => {
    expect(encodeValue(types.meta, { a: undefined, at: new Date(0), list: [1, 'x'] })).toEqual({
      at: '1970-01-01T00:00:00.000Z',
      list: [1, 'x'],
    });
  });

  it('numeric from a number or bigint becomes its string', () => {
    expect(encodeValue(types.price, 1.25)).toBe('1.25');
    expect(encodeValue(types.price, 10n ** 30n)).toBe('1000000000000000000000000000000');
  });
});

describe('values of the wrong shape', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;

  it.each([
    ['id', 'not-a-uuid', /cannot encode a uuid value: expected a UUID string .*got the string "not-a-uuid"/],
    ['title', 42, /cannot encode a text value: expected a string, got the number 42/],
    ['position', 2 ** 31, /cannot encode an integer value: expected a whole number between -2\^31/],
    ['position', 1.5, /got the number 1.5/],
    ['byteCount', 2n ** 63n, /expected a 64-bit bigint, got the bigint 9223372036854775808/],
    ['byteCount', 2 ** 53, /expected a 64-bit bigint/],
    ['byteCount', '12', /expected a 64-bit bigint, got the string "12"/],
    ['score', Number.NaN, /cannot encode a real value: expected a number, got the number NaN/],
    ['done', 1, /expected a boolean, got the number 1/],
    ['updatedAt', new Date(Number.NaN), /expected a valid Date, got an invalid Date/],
    ['updatedAt', T0, /expected a valid Date, got the number/],
    ['meta', () => 1, /cannot encode a json value: expected a JSON value/],
    ['meta', { n: 1n }, /expected a JSON value \(Do not know how to serialize a BigInt\)/],
    ['meta', cyclic, /expected a JSON value \(Converting circular structure/],
    ['meta', { toJSON: () => undefined }, /expected a JSON value/],
    ['avatar', [1, 2], /cannot encode a blob value: expected a Uint8Array, got an array/],
    ['avatar', 'AP8=', /expected a Uint8Array/],
    ['price', 'abc', /cannot encode a numeric value: expected a decimal number as a string/],
    ['price', Number.NaN, /expected a decimal number as a string/],
    ['priority', 'mid', /cannot encode an enum value: expected one of 'low', 'high', got the string "mid"/],
    ['at', new Date(0), /cannot encode a custom type "point" value: expected a plain JSON value/],
    ['at', { x: 1, y: undefined }, /custom type "point" values sync only as null/],
    ['title', undefined, /cannot encode a text value: got undefined, which JSON cannot carry \(use null\)/],
  ] as [keyof typeof types, unknown, RegExp][])('encode %s: %o', (key, value, message) => {
    expect(() => encodeValue(types[key], value)).toThrow(SyncProtocolError);
    expect(() => encodeValue(types[key], value)).toThrow(message);
  });

  it.each([
    ['id', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1', /cannot decode a uuid value: expected a UUID string/],
    ['title', ['a'], /cannot decode a text value: expected a string, got an array/],
    ['position', '1', /expected a whole number .*got the string "1"/],
    ['byteCount', 42, /cannot decode a bigint value: expected a 64-bit integer as a decimal string/],
    ['byteCount', 2 ** 53 + 2, /expected a 64-bit integer as a decimal string/],
    ['byteCount', '1.5', /decimal string/],
    ['byteCount', '+1', /decimal string/],
    ['byteCount', '01', /decimal string/],
    ['byteCount', '', /decimal string/],
    ['byteCount', '9223372036854775808', /expected a 64-bit bigint, got the bigint 9223372036854775808/],
    [
      'score',
      'NaN',
      /cannot decode a real value: expected a finite number, or "Infinity" or "-Infinity", got the string "NaN"/,
    ],
    ['score', 'inf', /expected a finite number, or "Infinity" or "-Infinity"/],
    ['done', 'true', /expected a boolean, got the string "true"/],
    ['done', 0, /expected a boolean, got the number 0/],
    ['updatedAt', '2023-11-14T22:13:20.123Z', /expected a timestamp as a whole number of ms since 1970/],
    ['updatedAt', 1.5, /whole number of ms/],
    ['updatedAt', 8.64e15 + 1, /whole number of ms/],
    ['meta', new Date(0), /cannot decode a json value: expected a JSON value/],
    ['meta', { at: new Date(0) }, /expected a JSON value/],
    ['meta', [1, Number.NaN], /expected a JSON value/],
    ['meta', { n: 1n }, /expected a JSON value/],
    ['avatar', [0, 255], /cannot decode a blob value: expected bytes as a base64 string, got an array/],
    ['avatar', 'AP8', /invalid base64: its length 3 is not a multiple of 4/],
    ['avatar', 'AP8@', /invalid base64: unexpected character "@" at position 3/],
    ['avatar', 'AP9=', /stray bits/],
    [
      'price',
      1.5,
      /cannot decode a numeric value: expected a decimal number as a string, got the number 1.5/,
    ],
    ['price', '1,5', /expected a decimal number as a string/],
    ['priority', 'LOW', /expected one of 'low', 'high', got the string "LOW"/],
    ['at', [1, undefined], /custom type "point"/],
    ['title', undefined, /cannot decode a text value: got undefined/],
  ] as [keyof typeof types, unknown, RegExp][])('decode %s: %o', (key, value, message) => {
    expect(() => decodeValue(types[key], value)).toThrow(SyncProtocolError);
    expect(() => decodeValue(types[key], value)).toThrow(message);
  });

  it('keeps the underlying error as the cause', () => {
    try {
      decodeValue(types.avatar, 'A===');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SyncProtocolError);
      expect((error as Error).cause).toBeInstanceOf(SyncProtocolError);
    }
  });
});

describe('converters resolved once', () => {
  /** What a call returns or throws, to compare two ways of converting the same value. */
  function outcome(convert: () => unknown): unknown {
    try {
      return { value: convert() };
    } catch (error) {
      return { error: (error as Error).message };
    }
  }

  it('valueDecoder decodes as decodeValue does, errors included', () => {
    for (const [key, values] of Object.entries(samples) as [keyof typeof types, unknown[]][]) {
      const decode = valueDecoder(types[key]);
      const wires = values.map((v) => JSON.parse(JSON.stringify(encodeValue(types[key], v))));
      for (const wire of [...wires, null, undefined, 'nope', 1.5, { a: 1 }]) {
        expect(outcome(() => decode(wire))).toEqual(outcome(() => decodeValue(types[key], wire)));
      }
    }
  });

  it('columnEncoder encodes a column as encodeRow does, errors included', () => {
    for (const column of everything.$columnList) {
      const encode = columnEncoder(everything, column.name);
      for (const value of [...samples[column.key as keyof typeof types], null, 'nope', 1.5, new Date(0)]) {
        expect(outcome(() => ({ [column.name]: encode(value) }))).toEqual(
          outcome(() => encodeRow(everything, { [column.name]: value })),
        );
      }
    }
    expect(() => columnEncoder(everything, 'byteCount')).toThrow(/it has no column "byteCount"/);
  });
});

describe('encodeRow / decodeRow', () => {
  const row = {
    id: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
    title: 'Milk',
    position: 3,
    byte_count: 2n ** 60n,
    score: 0.5,
    done: false,
    updated_at: new Date(T0),
    meta: { tags: ['ü'] },
    avatar: allBytes,
    price: '9.99',
    priority: 'high',
    at: { x: 1, y: 2 },
  };

  it('round-trips a whole row keyed by SQL column name', () => {
    const encoded = encodeRow(everything, row);
    expect(encoded).toMatchObject({
      id: row.id.toLowerCase(),
      byte_count: '1152921504606846976',
      updated_at: T0,
    });
    expect(decodeRow(everything, JSON.parse(JSON.stringify(encoded)))).toEqual({
      ...row,
      id: row.id.toLowerCase(),
    });
  });

  it('round-trips part of a row, nulls included, and leaves undefined out', () => {
    const partial = { id: row.id.toLowerCase(), title: null, updated_at: new Date(0), price: undefined };
    const encoded = encodeRow(everything, partial);
    expect(encoded).toEqual({ id: partial.id, title: null, updated_at: 0 });
    expect(decodeRow(everything, JSON.parse(JSON.stringify(encoded)))).toEqual({
      id: partial.id,
      title: null,
      updated_at: new Date(0),
    });
    expect(decodeRow(everything, {})).toEqual({});
  });

  it('rejects a column the table does not have, naming both', () => {
    expect(() => encodeRow(everything, { byteCount: 1n })).toThrow(SyncProtocolError);
    expect(() => encodeRow(everything, { byteCount: 1n })).toThrow(
      /cannot encode a row of table "everything": it has no column "byteCount" \(its columns: id, title, .*byte_count.*\); rows are keyed by SQL column name/,
    );
    expect(() => decodeRow(everything, { nope: 1 })).toThrow(
      /cannot decode a row of table "everything": it has no column "nope"/,
    );
    expect(() => decodeRow(everything, JSON.parse('{"__proto__": {"polluted": true}}'))).toThrow(
      /no column "__proto__"/,
    );
  });

  it('names the table and column of a value of the wrong shape', () => {
    expect(() => encodeRow(everything, { byte_count: 1.5 })).toThrow(
      /cannot encode everything.byte_count \(bigint\): expected a 64-bit bigint, got the number 1.5/,
    );
    expect(() => decodeRow(everything, { updated_at: '2023-01-01' })).toThrow(
      /cannot decode everything.updated_at \(timestamp\): expected a timestamp as a whole number of ms/,
    );
    expect(() => decodeRow(everything, { at: new Date(0) })).toThrow(
      /cannot decode everything.at \(custom type "point"\): expected a plain JSON value/,
    );
  });

  it('rejects a row that is not an object', () => {
    for (const [value, shown] of [
      [null, 'null'],
      [[1], 'an array'],
      ['row', 'string'],
    ] as const) {
      expect(() => decodeRow(everything, value)).toThrow(
        new RegExp(
          `cannot decode a row of table "everything": expected an object of column values, got ${shown}`,
        ),
      );
    }
  });
});
