import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { type Database, localTable, openDatabase, schema, text, uuid } from '../../src/index.js';
import { LocalReplica } from '../../src/sync/client/local-replica.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import type { ChangeJson, ChangesMessage } from '../../src/sync/protocol/messages.js';
import { allTypes, lists, todos } from '../support/fixtures.js';

/**
 * Shared by the client-*.test.ts files: a schema with synced tables (lists, todos, one column of
 * every type) and a local table, an in-memory SQLite database with the client installed, and
 * builders for server messages.
 */

export const drafts = localTable('drafts', {
  id: uuid().primaryKey(),
  body: text(),
});

export const clientSchema = schema({ lists, todos, allTypes, drafts }, { version: 1 });

export { allTypes, lists, todos };

export interface OutboxEntry {
  seq: number;
  table_name: string;
  op: string;
  pk: string;
  row: string | null;
  wall_ms: number;
  mutation_id: number | null;
  hlc: string | null;
}

/** A fresh in-memory database with the client's tables and triggers, and its replica. */
export async function openReplica(): Promise<{ db: Database<typeof clientSchema>; replica: LocalReplica }> {
  const db = await openDatabase(clientSchema, sqlite());
  const replica = new LocalReplica(db);
  await replica.open();
  return { db, replica };
}

export async function outbox(db: Database): Promise<OutboxEntry[]> {
  const { rows } = await db.driver.query({
    // Each row with its batch's mutation id and stamp (null while it belongs to no batch).
    sql: `SELECT o.seq, o.table_name, o.op, o.pk, o."row", o.wall_ms, b.mutation_id, b.hlc FROM _syncline_outbox AS o
      LEFT JOIN _syncline_batches AS b ON o.seq BETWEEN b.first_seq AND b.last_seq ORDER BY o.seq`,
    params: [],
    arrayMode: false,
    needsBigInt: false,
  });
  return rows as OutboxEntry[];
}

/** Deletes batch `mutationId` and its rows, as an ack does. */
export async function dropBatch(db: Database, mutationId: number): Promise<void> {
  const [batch] = await raw(db, 'SELECT first_seq, last_seq FROM _syncline_batches WHERE mutation_id = ?', [
    mutationId,
  ]);
  await raw(db, 'DELETE FROM _syncline_outbox WHERE seq BETWEEN ? AND ?', [batch.first_seq, batch.last_seq]);
  await raw(db, 'DELETE FROM _syncline_batches WHERE mutation_id = ?', [mutationId]);
}

export async function raw(db: Database, sqlText: string, params: unknown[] = []): Promise<any[]> {
  const { rows } = await db.driver.query({ sql: sqlText, params, arrayMode: false, needsBigInt: false });
  return rows as any[];
}

/** A valid uuid made from a number, for rows a test makes by the dozen. */
export function uuidOf(i: number): string {
  return `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
}

/** A server stamp at `wallMs` (node id 'server'). */
export function serverStamp(wallMs: number, counter = 0): string {
  return encodeHlc({ wallMs, counter, nodeId: 'server' });
}

export function changesMessage(from: string, to: string, changes: ChangeJson[]): ChangesMessage {
  return { type: 'changes', v: 1, from, to, changes };
}

/** Puts the replica at a cursor, as a finished snapshot would. */
export async function setCursor(db: Database, replica: LocalReplica, cursor: string): Promise<void> {
  await raw(db, 'UPDATE _syncline_capture SET cursor = ?', [cursor]);
  replica.cursor = cursor;
}

/** The cursor stored in the database (in the capture row), or null before any. */
export async function storedCursor(db: Database): Promise<string | null> {
  const [row] = await raw(db, 'SELECT cursor FROM _syncline_capture');
  return row.cursor;
}
