/**
 * The baseline: each driver used directly, its fastest reasonable way.
 *
 * better-sqlite3 is synchronous, and it is measured that way, as its users call it: the loop calls
 * it without awaiting anything. syncline, Drizzle and Kysely are awaited (their APIs are promises),
 * so the ratios to raw include what an async API costs per call on a synchronous driver.
 *
 * pg: named prepared statements for the prepared cases (parsed once per connection), plain text
 * queries for the unprepared one. Raw rows come back as the driver gives them: on SQLite, booleans
 * stay 0/1 and timestamps stay numbers, where the libraries return booleans and Dates.
 */
import type BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import {
  type Contender,
  chunks,
  JOIN_LIMIT,
  type ListRow,
  rowsPerStatement,
  type TodoRow,
} from './fixture.js';

const TODO_COLUMNS = 'id, list_id, title, position, done, updated_at';
const INSERT_COLUMNS = 6;

const sqliteById = `SELECT ${TODO_COLUMNS} FROM todos WHERE id = ?`;
const sqliteRecent = `SELECT t.id, t.title, t.done, t.updated_at, l.name AS list_name
  FROM todos t INNER JOIN lists l ON t.list_id = l.id
  WHERE l.owner_id = ? ORDER BY t.updated_at DESC LIMIT ${JOIN_LIMIT}`;

export function openRawSqlite(handle: BetterSqlite3.Database): Contender {
  const byId = handle.prepare(sqliteById);
  const recent = handle.prepare(sqliteRecent);
  const insert = handle.prepare(`INSERT INTO inserted_todos (${TODO_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`);
  // One statement run per row inside better-sqlite3's transaction: its fastest bulk path.
  const insertAll = handle.transaction((rows: readonly TodoRow[]) => {
    for (const r of rows) {
      insert.run(r.id, r.listId, r.title, r.position, r.done ? 1 : 0, r.updatedAt.getTime());
    }
  });
  return {
    selectPrepared: (id) => byId.get(id),
    selectFresh: (id) => handle.prepare(sqliteById).get(id),
    insertAll: (rows) => insertAll(rows),
    recentForOwner: (owner) => recent.all(owner),
    close: async () => {},
  };
}

const pgById = `SELECT ${TODO_COLUMNS} FROM todos WHERE id = $1`;
const pgRecent = `SELECT t.id, t.title, t.done, t.updated_at, l.name AS list_name
  FROM todos t INNER JOIN lists l ON t.list_id = l.id
  WHERE l.owner_id = $1 ORDER BY t.updated_at DESC LIMIT ${JOIN_LIMIT}`;

function multiRowInsert(rows: number): string {
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) {
    const base = r * INSERT_COLUMNS;
    tuples.push(`($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5}, $${base + 6})`);
  }
  return `INSERT INTO inserted_todos (${TODO_COLUMNS}) VALUES ${tuples.join(', ')}`;
}

/** A pool whose connections work in `pgSchema` (the same setting syncline's driver uses). */
export function benchPool(url: string, pgSchema: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, options: `-c search_path="${pgSchema}"` });
  pool.on('error', () => {});
  return pool;
}

/**
 * Multi-row inserts of `perStatement` rows as named prepared statements (one per chunk size), on one
 * connection between BEGIN and COMMIT. The default is as many rows as PostgreSQL's 65,535 parameters
 * allow: of 500, 1,000, 2,000, 5,000 and all 10,000 rows a statement, 1,000 and up ran equally fast
 * (within noise), and one `unnest()` of six arrays was no faster.
 */
export function openRawPostgres(
  url: string,
  pgSchema: string,
  perStatement = rowsPerStatement('postgres', INSERT_COLUMNS),
): Contender {
  const pool = benchPool(url, pgSchema);
  const insertTexts = new Map<number, string>();
  const insertText = (rows: number) => {
    let text = insertTexts.get(rows);
    if (!text) insertTexts.set(rows, (text = multiRowInsert(rows)));
    return text;
  };
  return {
    selectPrepared: async (id) =>
      (await pool.query({ name: 'raw_todo_by_id', text: pgById, values: [id] })).rows[0],
    selectFresh: async (id) => (await pool.query(pgById, [id])).rows[0],
    insertAll: async (rows) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        for (const chunk of chunks(rows, perStatement)) {
          const values: unknown[] = [];
          for (const r of chunk) values.push(r.id, r.listId, r.title, r.position, r.done, r.updatedAt);
          await client.query({ name: `raw_insert_${chunk.length}`, text: insertText(chunk.length), values });
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    },
    recentForOwner: async (owner) =>
      (await pool.query({ name: 'raw_recent_for_owner', text: pgRecent, values: [owner] })).rows,
    close: () => pool.end(),
  };
}

/** Fills `lists` and `todos` (created by syncline's schema) through the raw driver. */
export function seedSqlite(
  handle: BetterSqlite3.Database,
  lists: readonly ListRow[],
  todos: readonly TodoRow[],
): void {
  const list = handle.prepare('INSERT INTO lists (id, name, owner_id) VALUES (?, ?, ?)');
  const todo = handle.prepare(`INSERT INTO todos (${TODO_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`);
  handle.transaction(() => {
    for (const l of lists) list.run(l.id, l.name, l.ownerId);
    for (const t of todos)
      todo.run(t.id, t.listId, t.title, t.position, t.done ? 1 : 0, t.updatedAt.getTime());
  })();
  handle.exec('ANALYZE');
}

export async function seedPostgres(
  url: string,
  pgSchema: string,
  lists: readonly ListRow[],
  todos: readonly TodoRow[],
): Promise<void> {
  const pool = benchPool(url, pgSchema);
  try {
    await pool.query(
      'INSERT INTO lists (id, name, owner_id) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])',
      [lists.map((l) => l.id), lists.map((l) => l.name), lists.map((l) => l.ownerId)],
    );
    await pool.query(
      `INSERT INTO todos (${TODO_COLUMNS})
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::bool[], $6::timestamptz[])`,
      [
        todos.map((t) => t.id),
        todos.map((t) => t.listId),
        todos.map((t) => t.title),
        todos.map((t) => t.position),
        todos.map((t) => t.done),
        todos.map((t) => t.updatedAt),
      ],
    );
    await pool.query('ANALYZE lists; ANALYZE todos');
  } finally {
    await pool.end();
  }
}
