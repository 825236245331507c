import {
  bigint,
  blob,
  boolean,
  check,
  enumOf,
  foreignKey,
  index,
  integer,
  json,
  numeric,
  primaryKey,
  real,
  schema,
  sql,
  table,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from '../../src/index.js';
import { point } from './fixtures.js';

/**
 * A schema that uses every part of a declaration at once, for tests that read a database back
 * (verifySchema): every column type and kind of default, an enum, a composite primary key,
 * unique columns, checks, column-level and table-level (composite) foreign keys with actions,
 * and plain, unique and partial indexes.
 */

export const accounts = table('accounts', {
  id: uuid().primaryKey().defaultRandom(),
  email: text().notNull().unique(),
  handle: text().notNull().unique('accounts_handle_unique'),
  createdAt: timestamp('created_at').notNull().defaultNow(),
  token: text().$defaultFn(() => 'generated-in-typescript'),
  avatar: blob(),
  location: point(),
});

export const projects = table(
  'projects',
  {
    id: integer().primaryKey(),
    ownerId: uuid('owner_id')
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade', onUpdate: 'cascade' }),
    parentId: integer('parent_id').references((): any => projects.id, { onDelete: 'set null' }),
    name: text().notNull().default('untitled'),
    archived: boolean().notNull().default(false),
    priority: enumOf(['low', 'high']).notNull().default('low'),
    score: real().default(1.5),
    budget: numeric().default('10.50'),
    size: bigint().notNull().default(5n),
    position: integer().notNull().default(-1),
    tags: json<string[]>().notNull().default([]),
    settings: json<Record<string, unknown>>().default({ theme: 'dark', size: 2 }),
    logo: blob().default(new Uint8Array([1, 2])),
    startsAt: timestamp('starts_at').default(new Date('2024-01-02T03:04:05.678Z')),
    slug: text().default(sql`lower('ABC')`),
  },
  (t) => [
    index('projects_owner_idx').on(t.ownerId),
    uniqueIndex('projects_owner_name_idx').on(t.ownerId, t.name),
    index('projects_live_idx').on(t.ownerId, t.position).where(sql`${t.archived} = ${false}`),
    check('projects_position_check', sql`${t.position} >= -1`),
  ],
);

export const memberships = table(
  'memberships',
  {
    projectId: integer('project_id').notNull(),
    accountId: uuid('account_id').notNull(),
    role: text().notNull().default('viewer'),
    note: text(),
  },
  (t) => [
    primaryKey({ columns: [t.projectId, t.accountId] }),
    foreignKey({ columns: [t.projectId], foreignColumns: () => [projects.id], onDelete: 'cascade' }),
    foreignKey({
      name: 'memberships_account_fk',
      columns: [t.accountId],
      foreignColumns: () => [accounts.id],
      onDelete: 'restrict',
      onUpdate: 'no action',
    }),
  ],
);

export const tasks = table(
  'tasks',
  {
    id: integer().primaryKey(),
    projectId: integer('project_id').notNull(),
    accountId: uuid('account_id').notNull(),
    title: text().notNull(),
    dueAt: timestamp('due_at'),
  },
  (t) => [
    foreignKey({
      columns: [t.projectId, t.accountId],
      foreignColumns: () => [memberships.projectId, memberships.accountId],
      onDelete: 'cascade',
    }),
    index('tasks_due_idx').on(t.dueAt),
  ],
);

export const richSchema = schema({ tasks, memberships, projects, accounts }, { version: 1 });
