import {
  bigint,
  blob,
  boolean,
  customType,
  enumOf,
  index,
  integer,
  json,
  numeric,
  real,
  schema,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';

/**
 * The tables the dialect suite runs on: the lists and todos of docs/design.md section 1 (with two
 * nullable extras, `note` and `position`, for null handling), and a table with one column of every
 * type.
 * Shared by several test files: add to it, do not change what is here.
 */

export const lists = table('lists', {
  id: uuid().primaryKey().defaultRandom(),
  name: text().notNull(),
  ownerId: text('owner_id').notNull(),
});

export const todos = table(
  'todos',
  {
    id: uuid().primaryKey().defaultRandom(),
    listId: uuid('list_id')
      .notNull()
      .references(() => lists.id, { onDelete: 'cascade' }),
    title: text().notNull(),
    done: boolean().notNull().default(false),
    updatedAt: timestamp('updated_at').notNull().defaultNow(),
    tags: json<string[]>().notNull().default([]),
    note: text(),
    position: integer(),
  },
  (t) => [index('todos_list_idx').on(t.listId)],
);

export const appSchema = schema({ lists, todos }, { version: 1 });

export interface Point {
  x: number;
  y: number;
}

/**
 * A custom type stored differently per dialect: JSON text `[x,y]` on SQLite, a native `POINT` on
 * PostgreSQL (node-postgres parses it to `{ x, y }`, PGlite returns the text `(x,y)`).
 */
export const point = customType<{ data: Point; driverData: any }>({
  name: 'point',
  sqlType: { sqlite: 'TEXT', postgres: 'POINT' },
  toDriver: {
    sqlite: (p) => JSON.stringify([p.x, p.y]),
    postgres: (p) => `(${p.x},${p.y})`,
  },
  fromDriver: {
    sqlite: (s: string) => {
      const [x, y] = JSON.parse(s) as [number, number];
      return { x, y };
    },
    postgres: (v: string | Point) => {
      if (typeof v !== 'string') return { x: v.x, y: v.y };
      const [x, y] = v.replace(/[()]/g, '').split(',').map(Number) as [number, number];
      return { x, y };
    },
  },
});

/** One nullable column of every type (and a not-null json with a default). */
export const allTypes = table('all_types', {
  id: uuid().primaryKey(),
  text: text(),
  integer: integer(),
  bigint: bigint(),
  real: real(),
  boolean: boolean(),
  timestamp: timestamp(),
  json: json<unknown>(),
  jsonList: json<string[]>('json_list').notNull().default([]),
  blob: blob(),
  numeric: numeric(),
  priority: enumOf(['low', 'high']),
  point: point(),
});

/**
 * The columns of an `allTypes` row with a value of every kind at its edges (the lowest integer, a
 * bigint past 2^53, unicode and escapes in text, nested json, bytes at both ends, a long decimal), for
 * tests that send one row through a path and compare what comes out.
 *
 * @example
 *   await db.insert(allTypes).values({ ...allTypesEdges, id });
 */
export const allTypesEdges: Omit<typeof allTypes.$inferInsert, 'id'> = {
  text: 'ünïcödé "quoted" \\ back',
  integer: -2147483648,
  bigint: 2n ** 63n - 1n,
  real: 1.000000000000001,
  boolean: true,
  timestamp: new Date('2024-02-29T23:59:59.999Z'),
  json: { nested: [1, 'two', null, { deep: true }], n: 1.5e300 },
  jsonList: ['a', 'b'],
  blob: new Uint8Array([0, 1, 127, 128, 255]),
  numeric: '12345678901234567890.123456789000',
  priority: 'high',
  point: { x: 1.5, y: -2 },
};

export const typesSchema = schema({ allTypes }, { version: 1 });
