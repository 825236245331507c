import { boolean, schema, table, text, uuid } from '../../src/index.js';

/**
 * The schema the browser sync test shares between its page (the client) and its Node side (the
 * server): a module with no Node import, so both load it.
 */
export const notes = table('notes', {
  id: uuid().primaryKey(),
  body: text().notNull(),
  pinned: boolean().notNull().default(false),
});

export const browserSyncSchema = schema({ notes }, { version: 1 });
