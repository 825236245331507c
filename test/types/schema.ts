import {
  bigint,
  blob,
  boolean,
  customType,
  enumOf,
  index,
  integer,
  json,
  localTable,
  numeric,
  real,
  schema,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';

/**
 * The tables the type tests query: the lists and todos of docs/design.md section 1, and one column
 * of every kind.
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
    note: text(),
    done: boolean().notNull().default(false),
    updatedAt: timestamp('updated_at').notNull().defaultNow(),
    tags: json<string[]>().notNull().default([]),
  },
  (t) => [index('todos_list_idx').on(t.listId)],
);

export type UserId = string & { readonly __brand: 'UserId' };
export interface Point {
  x: number;
  y: number;
}

export const point = customType<{ data: Point; driverData: string }>({
  name: 'point',
  sqlType: { sqlite: 'TEXT', postgres: 'TEXT' },
  toDriver: (p) => `${p.x},${p.y}`,
  fromDriver: (s) => {
    const [x = 0, y = 0] = s.split(',').map(Number);
    return { x, y };
  },
});

export const samples = table('samples', {
  id: integer().primaryKey(),
  userId: uuid('user_id').$type<UserId>().notNull(),
  size: bigint().notNull(),
  bytesSeen: bigint('bytes_seen'),
  score: real(),
  price: numeric(),
  createdAt: timestamp('created_at').notNull().defaultNow(),
  seenAt: timestamp('seen_at'),
  avatar: blob(),
  meta: json<{ a: number; b?: string }>(),
  anything: json(),
  status: enumOf(['open', 'closed']).notNull().default('open'),
  level: enumOf('level', ['low', 'high']),
  at: point().notNull(),
  maybeAt: point('maybe_at'),
  slug: text()
    .notNull()
    .$defaultFn(() => 'slug'),
  flag: boolean().notNull(),
});

export const drafts = localTable('drafts', {
  id: uuid().primaryKey(),
  body: text(),
});

export const appSchema = schema({ lists, todos, samples, drafts }, { version: 1 });

export type List = typeof lists.$inferSelect;
export type Todo = typeof todos.$inferSelect;
