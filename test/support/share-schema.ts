import { eq, inArray, schema, table, text, uuid } from '../../src/index.js';
import type { SyncRules } from '../../src/sync/server/index.js';

/**
 * Lists shared through a membership table: a user reads the todos of the lists she is a member
 * of (a read rule with a subquery), so rows move in and out of her shape when `members` changes.
 * Used by test/sync/move-in-out.test.ts and `npm run bench:move-in`.
 *
 * @example
 *   const t = await startTestServer(shareSchema, { driver, rules: shareRules });
 */
export const lists = table('lists', { id: uuid().primaryKey(), name: text().notNull() });
export const members = table('members', {
  id: uuid().primaryKey(),
  listId: uuid('list_id').notNull(),
  userId: text('user_id').notNull(),
});
export const todos = table('todos', {
  id: uuid().primaryKey(),
  listId: uuid('list_id').notNull(),
  title: text().notNull(),
});
export const shareSchema = schema({ lists, members, todos }, { version: 1 });

/** Lists for everyone, her own memberships, and the todos of her lists. */
export const shareRules: SyncRules<typeof shareSchema> = {
  lists: { read: () => true, write: () => true },
  members: { read: (user) => eq(members.userId, user.userId), write: () => true },
  todos: {
    read: (user, db) =>
      inArray(
        todos.listId,
        db.select({ id: members.listId }).from(members).where(eq(members.userId, user.userId)),
      ),
    write: () => true,
  },
};
