import { describe, expect, it } from 'vitest';
import {
  and,
  between,
  bigint,
  blob,
  boolean,
  enumOf,
  eq,
  exists,
  fn,
  gt,
  gte,
  ilike,
  inArray,
  integer,
  isNotNull,
  isNull,
  json,
  like,
  lt,
  lte,
  ne,
  not,
  notBetween,
  notExists,
  notIlike,
  notInArray,
  notLike,
  numeric,
  or,
  postgresDialect,
  real,
  SelectBuilder,
  type SQL,
  SyncProtocolError,
  schema,
  sql,
  sqliteDialect,
  table,
  text,
  timestamp,
  UsageError,
  uuid,
} from '../../src/index.js';
import { filterFromJson } from '../../src/sync/protocol/filter-from-json.js';
import { filterToJson } from '../../src/sync/protocol/filter-to-json.js';
import { FILTER_OPERATORS, type FilterJson } from '../../src/sync/protocol/filter-tree.js';
import { SyncMessageError } from '../../src/sync/protocol/messages-error.js';

const items = table('items', {
  id: uuid().primaryKey(),
  listId: uuid('list_id').notNull(),
  title: text().notNull(),
  note: text(),
  rank: integer(),
  big: bigint(),
  score: real(),
  done: boolean().notNull(),
  dueAt: timestamp('due_at'),
  price: numeric(),
  status: enumOf(['open', 'closed']),
  data: blob(),
  tags: json<string[]>(),
});

const other = table('other', { id: uuid().primaryKey(), itemId: uuid('item_id') });
const itemsSchema = schema({ items, other }, { version: 1 });
const select = <S extends Record<string, any> | undefined>(fields: S) =>
  new SelectBuilder(undefined as any, fields, false);

const ID = '30000000-0000-4000-8000-000000000001';
const ID2 = '30000000-0000-4000-8000-000000000002';
const DUE = new Date('2024-05-01T12:00:00.000Z');

/** The filter as it arrives: through JSON text, as the wire carries it. */
function overTheWire(condition: SQL<unknown>): unknown {
  return JSON.parse(JSON.stringify(filterToJson(condition, items)));
}

function compileBoth(condition: SQL<unknown>) {
  return [sqliteDialect, postgresDialect].map((dialect) => {
    const { sql: text, params } = dialect.compiler.compile({ kind: 'raw', chunks: [condition.node] });
    return { text, params };
  });
}

/**
 * A compiled condition as it means: subqueries' column aliases dropped, and an EXISTS subquery's
 * fields written as `1` (the rebuilt tree selects `1`, whatever the builder selected).
 */
function meaning(compiled: { text: string; params: readonly unknown[] }) {
  const text = compiled.text
    .replace(/ AS "[^"]*"/g, '')
    .replace(/EXISTS \(SELECT .*? FROM/g, 'EXISTS (SELECT 1 FROM');
  return { ...compiled, text };
}

function errorOf(run: () => unknown): SyncMessageError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(SyncMessageError);
    expect(error).toBeInstanceOf(SyncProtocolError);
    return error as SyncMessageError;
  }
  throw new Error('expected an error');
}

describe('filter tree: to JSON and back, compiling to the same SQL on both dialects', () => {
  const cases: [string, SQL<unknown>, FilterJson][] = [
    ['eq (uuid)', eq(items.listId, ID), { op: 'eq', column: 'list_id', value: ID }],
    ['ne (text)', ne(items.title, 'Milk'), { op: 'ne', column: 'title', value: 'Milk' }],
    ['gt (integer)', gt(items.rank, 3), { op: 'gt', column: 'rank', value: 3 }],
    ['gte (bigint)', gte(items.big, 2n ** 60n), { op: 'gte', column: 'big', value: '1152921504606846976' }],
    ['lt (timestamp)', lt(items.dueAt, DUE), { op: 'lt', column: 'due_at', value: DUE.getTime() }],
    ['lte (real)', lte(items.score, 1.5), { op: 'lte', column: 'score', value: 1.5 }],
    ['eq (boolean)', eq(items.done, false), { op: 'eq', column: 'done', value: false }],
    ['eq (numeric)', eq(items.price, '12.50'), { op: 'eq', column: 'price', value: '12.50' }],
    ['eq (enum)', eq(items.status, 'open'), { op: 'eq', column: 'status', value: 'open' }],
    ['eq (blob)', eq(items.data, new Uint8Array([0, 255])), { op: 'eq', column: 'data', value: 'AP8=' }],
    ['inArray', inArray(items.id, [ID, ID2]), { op: 'inArray', column: 'id', values: [ID, ID2] }],
    ['inArray (empty)', inArray(items.id, []), { op: 'inArray', column: 'id', values: [] }],
    ['notInArray', notInArray(items.rank, [1, 2]), { op: 'notInArray', column: 'rank', values: [1, 2] }],
    ['isNull', isNull(items.note), { op: 'isNull', column: 'note' }],
    ['isNotNull (json)', isNotNull(items.tags), { op: 'isNotNull', column: 'tags' }],
    [
      'between (timestamp)',
      between(items.dueAt, new Date(0), DUE),
      { op: 'between', column: 'due_at', low: 0, high: DUE.getTime() },
    ],
    ['notBetween', notBetween(items.rank, 1, 9), { op: 'notBetween', column: 'rank', low: 1, high: 9 }],
    ['like', like(items.title, 'Mi%'), { op: 'like', column: 'title', pattern: 'Mi%' }],
    ['notLike', notLike(items.title, '%x_'), { op: 'notLike', column: 'title', pattern: '%x_' }],
    ['ilike', ilike(items.title, '%milk%'), { op: 'ilike', column: 'title', pattern: '%milk%' }],
    ['notIlike', notIlike(items.note, 'a%'), { op: 'notIlike', column: 'note', pattern: 'a%' }],
    ['eq with null', eq(items.note, null as unknown as string), { op: 'eq', column: 'note', value: null }],
    [
      'and',
      and(eq(items.listId, ID), eq(items.done, false))!,
      {
        op: 'and',
        args: [
          { op: 'eq', column: 'list_id', value: ID },
          { op: 'eq', column: 'done', value: false },
        ],
      },
    ],
    [
      'or',
      or(isNull(items.rank), gt(items.rank, 0))!,
      {
        op: 'or',
        args: [
          { op: 'isNull', column: 'rank' },
          { op: 'gt', column: 'rank', value: 0 },
        ],
      },
    ],
    ['not', not(eq(items.done, true)), { op: 'not', arg: { op: 'eq', column: 'done', value: true } }],
    [
      'inArray (subquery)',
      inArray(items.id, select({ id: other.itemId }).from(other).where(isNotNull(other.itemId))),
      {
        op: 'inArray',
        column: 'id',
        subquery: { table: 'other', column: 'item_id', where: { op: 'isNotNull', column: 'item_id' } },
      },
    ],
    [
      'notInArray (subquery, no where)',
      notInArray(items.id, select({ id: other.itemId }).from(other)),
      { op: 'notInArray', column: 'id', subquery: { table: 'other', column: 'item_id' } },
    ],
    [
      'exists (correlated)',
      exists(select(undefined).from(other).where(eq(other.itemId, items.id))),
      {
        op: 'exists',
        subquery: {
          table: 'other',
          where: { op: 'eq', column: 'item_id', outer: { table: 'items', column: 'id' } },
        },
      },
    ],
    [
      'notExists (correlated)',
      notExists(
        select(undefined)
          .from(other)
          .where(and(gt(other.itemId, items.id), eq(other.id, ID))),
      ),
      {
        op: 'notExists',
        subquery: {
          table: 'other',
          where: {
            op: 'and',
            args: [
              { op: 'gt', column: 'item_id', outer: { table: 'items', column: 'id' } },
              { op: 'eq', column: 'id', value: ID },
            ],
          },
        },
      },
    ],
    [
      'nested',
      and(
        eq(items.listId, ID),
        or(not(inArray(items.status, ['closed'])), and(isNull(items.dueAt), ilike(items.title, 'a%'))),
      )!,
      {
        op: 'and',
        args: [
          { op: 'eq', column: 'list_id', value: ID },
          {
            op: 'or',
            args: [
              { op: 'not', arg: { op: 'inArray', column: 'status', values: ['closed'] } },
              {
                op: 'and',
                args: [
                  { op: 'isNull', column: 'due_at' },
                  { op: 'ilike', column: 'title', pattern: 'a%' },
                ],
              },
            ],
          },
        ],
      },
    ],
  ];

  it.each(cases)('%s', (_name, condition, expected) => {
    expect(filterToJson(condition, items)).toEqual(expected);
    const rebuilt = filterFromJson(overTheWire(condition), items, {}, 'where', { schema: itemsSchema });
    expect(compileBoth(rebuilt).map(meaning)).toEqual(compileBoth(condition).map(meaning));
  });

  it('covers every operator of the tree', () => {
    const used = new Set<string>();
    const visit = (f: FilterJson): void => {
      used.add(f.op);
      if (f.op === 'and' || f.op === 'or') f.args.forEach(visit);
      if (f.op === 'not') visit(f.arg);
      if ('subquery' in f && f.subquery.where) visit(f.subquery.where);
    };
    for (const [, , json] of cases) visit(json);
    expect([...used].sort()).toEqual([...FILTER_OPERATORS].sort());
  });

  it('turns a correlation with the outer column first around', () => {
    const subquery = (condition: SQL<boolean>) => exists(select(undefined).from(other).where(condition));
    expect(filterToJson(subquery(lt(items.id, other.itemId)), items)).toEqual(
      filterToJson(subquery(gt(other.itemId, items.id)), items),
    );
    expect(filterToJson(subquery(gte(items.id, other.itemId)), items)).toEqual(
      filterToJson(subquery(lte(other.itemId, items.id)), items),
    );
  });

  it('finds the table by itself when none is given', () => {
    expect(filterToJson(eq(items.rank, 1))).toEqual({ op: 'eq', column: 'rank', value: 1 });
    const correlated = exists(select(undefined).from(other).where(eq(other.itemId, items.id)));
    expect(filterToJson(correlated)).toEqual(filterToJson(correlated, items));
  });

  it('decodes values into app values (a Date, a bigint) for the column', () => {
    const rebuilt = filterFromJson({ op: 'between', column: 'due_at', low: 0, high: DUE.getTime() }, items);
    const node = rebuilt.node as { kind: string; low: { value: unknown }; high: { value: unknown } };
    expect(node.kind).toBe('between');
    expect(node.low.value).toEqual(new Date(0));
    expect(node.high.value).toEqual(DUE);
    const big = filterFromJson({ op: 'eq', column: 'big', value: '-42' }, items).node as {
      right: { value: unknown };
    };
    expect(big.right.value).toBe(-42n);
  });
});

describe('filterToJson refuses what a filter cannot express', () => {
  const refuse = (condition: SQL<unknown>, message: RegExp) => {
    expect(() => filterToJson(condition, items)).toThrow(UsageError);
    expect(() => filterToJson(condition, items)).toThrow(message);
  };

  it('a subquery that is more than one table filtered', () => {
    const ids = select({ id: other.itemId }).from(other);
    refuse(inArray(items.id, select({ id: other.itemId, x: other.id }).from(other)), /exactly one column/);
    refuse(inArray(items.id, ids.limit(3)), /a subquery with ORDER BY, LIMIT or OFFSET/);
    refuse(inArray(items.id, ids.union(ids)), /a UNION, INTERSECT or EXCEPT in a subquery/);
    refuse(
      inArray(items.id, select({ id: items.id }).from(items)),
      /reads "items", which the filter around it/,
    );
    refuse(
      exists(select(undefined).from(other).innerJoin(items, eq(items.id, other.itemId))),
      /a subquery with a join/,
    );
    // Inside a subquery: its own columns are tested, and compared with the tables around it only.
    refuse(
      exists(select(undefined).from(other).where(eq(items.done, true))),
      /conditions test columns of "other"; compare/,
    );
    refuse(
      exists(select(undefined).from(other).where(eq(other.id, other.itemId))),
      /comparing two columns \(other\.id with other\.item_id\)/,
    );
  });

  it('raw SQL, functions and placeholders', () => {
    refuse(sql`${items.rank} > 1`, /raw SQL \(sql`...`\) cannot be sent/);
    refuse(
      eq(fn<string>('lower', items.title), 'milk'),
      /a function call \(lower\(\)\) in place of a column/,
    );
    refuse(eq(items.id, sql.placeholder('id')), /the placeholder "id" \(pass the value itself\)/);
    refuse(and(eq(items.rank, 1), sql`true`)!, /raw SQL/);
  });

  it('two columns compared, or a column of another table', () => {
    refuse(eq(items.listId, items.id), /comparing two columns \(items\.list_id with items\.id\)/);
    refuse(
      eq(other.id, ID),
      /uses other\.id, but a shape filter can only use columns of its own table "items"/,
    );
    expect(() => filterToJson(and(eq(items.id, ID), eq(other.id, ID))!)).toThrow(
      /only use columns of its own table/,
    );
  });

  it('a value its column type cannot take, naming the column', () => {
    refuse(eq(items.rank, 'seven' as unknown as number), /the value for items\.rank: .*integer/);
  });
});

describe('filterFromJson checks the tree against the table', () => {
  it('an unknown column names the table and the column', () => {
    const e = errorOf(() =>
      filterFromJson({ op: 'eq', column: 'colour', value: 'red' }, items, {}, 'shapes[0].where'),
    );
    expect(e.code).toBe('unknown_column');
    expect(e.message).toMatch(
      /^shapes\[0\]\.where\.column: table "items" has no column "colour"; its columns are id, list_id,/,
    );
    expect(e.path).toBe('shapes[0].where.column');
  });

  it('a TypeScript key instead of the SQL name is an unknown column', () => {
    const e = errorOf(() => filterFromJson({ op: 'and', args: [{ op: 'isNull', column: 'dueAt' }] }, items));
    expect(e.code).toBe('unknown_column');
    expect(e.message).toMatch(/where\.args\[0\]\.column: table "items" has no column "dueAt"/);
  });

  it('an unknown operator', () => {
    const e = errorOf(() => filterFromJson({ op: 'and', args: [{ op: 'regexp', column: 'title' }] }, items));
    expect(e.code).toBe('invalid_filter');
    expect(e.message).toMatch(
      /where\.args\[0\]\.op: unknown filter operator; expected one of eq, ne, gt, .*, not/,
    );
  });

  it('wrong shapes: missing fields, extra fields, wrong types, empty and', () => {
    const cases: [unknown, RegExp][] = [
      [{ op: 'eq', column: 'title' }, /where\.value: missing \(expected a JSON value\)/],
      [{ op: 'eq', value: 1 }, /where\.column: missing \(expected string\)/],
      [{ op: 'isNull', column: 'note', value: 1 }, /where: unknown field "value"/],
      [{ op: 'inArray', column: 'rank', values: 3 }, /where\.values: expected array, received number/],
      [{ op: 'like', column: 'title', pattern: 5 }, /where\.pattern: expected string, received number/],
      [{ op: 'and', args: [] }, /where\.args: and\/or need at least one condition/],
      [{ op: 'not', arg: 'x' }, /where\.arg: expected object, received string/],
      ['eq', /where: expected object, received string/],
      [null, /where: expected object, received null/],
      [[{ op: 'isNull', column: 'note' }], /where: expected object, received array/],
    ];
    for (const [json, message] of cases) {
      const e = errorOf(() => filterFromJson(json, items));
      expect(e.code, JSON.stringify(json)).toBe('invalid_filter');
      expect(e.message).toMatch(message);
    }
  });

  it('a value of the wrong type for its column', () => {
    const e = errorOf(() =>
      filterFromJson({ op: 'inArray', column: 'due_at', values: [0, '2024-01-01'] }, items),
    );
    expect(e.code).toBe('invalid_filter');
    expect(e.message).toMatch(/where\.values\[1\]: .*timestamp as a whole number of ms/);
    const big = errorOf(() => filterFromJson({ op: 'eq', column: 'big', value: 5 }, items));
    expect(big.message).toMatch(/where\.value: .*decimal string/);
  });

  it('operators the column type cannot take', () => {
    const like = errorOf(() => filterFromJson({ op: 'like', column: 'rank', pattern: '1%' }, items));
    expect(like.code).toBe('invalid_filter');
    expect(like.message).toMatch(
      /where: like on items\.rank: pattern matching needs a text column, and this one is integer/,
    );
    const json = errorOf(() => filterFromJson({ op: 'eq', column: 'tags', value: ['a'] }, items));
    expect(json.message).toMatch(/json columns can only be tested with isNull or isNotNull/);
    const bytes = errorOf(() => filterFromJson({ op: 'gt', column: 'data', value: 'AA==' }, items));
    expect(bytes.message).toMatch(/blob columns cannot be ordered/);
  });

  it('too deep a tree', () => {
    let deep: FilterJson = { op: 'isNull', column: 'note' };
    for (let i = 0; i < 16; i++) deep = { op: 'not', arg: deep };
    const e = errorOf(() => filterFromJson(deep, items));
    expect(e.code).toBe('too_large');
    expect(e.message).toMatch(/nests and\/or\/not deeper than 16 levels \(the maxDepth limit\)/);
    expect(() => filterFromJson(deep, items, { maxDepth: 17 })).not.toThrow();
  });

  it('hostile nesting is refused without overflowing the stack', () => {
    let deep: unknown = { op: 'isNull', column: 'note' };
    for (let i = 0; i < 100_000; i++) deep = { op: 'not', arg: deep };
    expect(errorOf(() => filterFromJson(deep, items)).code).toBe('too_large');
  });

  it('too many nodes, counting inArray values', () => {
    const values = Array.from({ length: 1000 }, (_, i) => i);
    const e = errorOf(() => filterFromJson({ op: 'inArray', column: 'rank', values }, items));
    expect(e.code).toBe('too_large');
    expect(e.message).toMatch(/more than 1000 nodes \(the maxNodes limit/);
    expect(() =>
      filterFromJson({ op: 'inArray', column: 'rank', values }, items, { maxNodes: 1001 }),
    ).not.toThrow();
    const wide = { op: 'or', args: Array.from({ length: 20 }, () => ({ op: 'isNull', column: 'note' })) };
    expect(errorOf(() => filterFromJson(wide, items, { maxNodes: 10 })).code).toBe('too_large');
  });
});
