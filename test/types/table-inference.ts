import {
  type AnyTable,
  type InferInsertModel,
  type InferSelectModel,
  integer,
  json,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';
import { expectType } from './assert.js';
import { type appSchema, drafts, lists, type Point, samples, todos, type UserId } from './schema.js';

// Declared tables are tables: every API that takes `AnyTable` accepts them.
export const anyTables: AnyTable[] = [lists, todos, samples, drafts];
expectType<typeof appSchema.tables.todos>().toBe<typeof todos>();

// $inferSelect: a not-null column is T, a nullable one T | null, every kind maps to its TypeScript type.

expectType<typeof lists.$inferSelect>().toBe<{ id: string; name: string; ownerId: string }>();

expectType<typeof todos.$inferSelect>().toBe<{
  id: string;
  listId: string;
  title: string;
  note: string | null;
  done: boolean;
  updatedAt: Date;
  tags: string[];
}>();

expectType<typeof samples.$inferSelect>().toBe<{
  id: number;
  userId: UserId;
  size: bigint;
  bytesSeen: bigint | null;
  score: number | null;
  price: string | null;
  createdAt: Date;
  seenAt: Date | null;
  avatar: Uint8Array | null;
  meta: { a: number; b?: string } | null;
  anything: unknown;
  status: 'open' | 'closed';
  level: 'low' | 'high' | null;
  at: Point;
  maybeAt: Point | null;
  slug: string;
  flag: boolean;
}>();

expectType<typeof drafts.$inferSelect>().toBe<{ id: string; body: string | null }>();
expectType<InferSelectModel<typeof todos>>().toBe<typeof todos.$inferSelect>();

// $inferInsert: not-null columns without a default are required; nullable and defaulted ones optional.

expectType<typeof lists.$inferInsert>().toBe<{ name: string; ownerId: string; id?: string }>();

expectType<typeof todos.$inferInsert>().toBe<{
  listId: string;
  title: string;
  id?: string;
  note?: string | null;
  done?: boolean;
  updatedAt?: Date;
  tags?: string[];
}>();

expectType<typeof samples.$inferInsert>().toBe<{
  id: number;
  userId: UserId;
  size: bigint;
  at: Point;
  flag: boolean;
  bytesSeen?: bigint | null;
  score?: number | null;
  price?: string | null;
  createdAt?: Date;
  seenAt?: Date | null;
  avatar?: Uint8Array | null;
  meta?: { a: number; b?: string } | null;
  anything?: unknown;
  status?: 'open' | 'closed';
  level?: 'low' | 'high' | null;
  maybeAt?: Point | null;
  slug?: string;
}>();

// primaryKey() without a default must be given; primaryKey().defaultRandom() need not be.
expectType<typeof drafts.$inferInsert>().toBe<{ id: string; body?: string | null }>();
expectType<InferInsertModel<typeof drafts>>().toBe<typeof drafts.$inferInsert>();

// A column is typed with its table's name, which is how left joins know what may be null.
expectType<(typeof todos.title)['_']['tableName']>().toBe<'todos'>();
expectType<typeof todos.$name>().toBe<'todos'>();

// Column builder modifiers.

const modifiers = table('modifiers', {
  // default() and $defaultFn() take the column's own type.
  a: integer().notNull().default(1),
  b: json<{ x: number }>().default({ x: 1 }),
  c: text().$type<'x' | 'y'>().notNull(),
  d: timestamp().$defaultFn(() => new Date()),
  // @ts-expect-error default() of the wrong type
  e: integer().default('one'),
  // @ts-expect-error $defaultFn() returning the wrong type
  f: text().$defaultFn(() => 1),
  // @ts-expect-error defaultRandom() is only for uuid columns
  g: text().defaultRandom(),
  // @ts-expect-error defaultNow() is only for timestamp columns
  h: integer().defaultNow(),
  // @ts-expect-error $type() must narrow the column's type, not replace it
  i: integer().$type<string>(),
  j: uuid().defaultRandom().primaryKey(),
});

expectType<typeof modifiers.$inferSelect.c>().toBe<'x' | 'y'>();
expectType<typeof modifiers.$inferInsert.j>().toBe<string | undefined>();
expectType<typeof modifiers.$inferInsert.d>().toBe<Date | null | undefined>();
