/**
 * The order the server applied things in, from its change log: the first tick (commit order) of
 * the changes of each client batch (by client id and mutation id) and of each direct transaction
 * (by transaction id). The model needs it for cascades: a child inserted before its parent's
 * delete goes with it, one inserted after it is refused.
 *
 * A prune deletes ticks, so they are not read from the log itself: `recordLogOrder` makes the
 * reader's tick INSERT copy each tick, with the origin, mutation and transaction of its change,
 * into a table of the harness's own that nothing prunes. Reading the log just before a prune left
 * out whatever was ticked between that read and the prune; the checker then placed those batches
 * by when their ack arrived, which can be much later (seed 7: a batch applied before its owner's
 * delete, acked after a reconnect, was modelled after it, and its items reported lost).
 */
import { type Database, sql } from '../src/index.js';

/**
 * Ticks of the log: `batch` maps `clientId:mutationId`, `tx` maps a transaction id, to the first
 * tick of its changes.
 *
 * @example
 *   const order = await server.call<LogOrder>('logOrder', undefined, 10_000);
 */
export interface LogOrder {
  readonly batch: Record<string, number>;
  readonly tx: Record<string, number>;
}

const RECORD_LOG_ORDER = [
  `CREATE TABLE IF NOT EXISTS _soak_log_order (
     tick bigint PRIMARY KEY,
     origin text,
     mutation_id bigint,
     txid text NOT NULL
   )`,
  `CREATE OR REPLACE FUNCTION _soak_note_ticks() RETURNS trigger LANGUAGE plpgsql AS $fn$
   BEGIN
     INSERT INTO _soak_log_order (tick, origin, mutation_id, txid)
       SELECT t.tick, c.origin, c.mutation_id, c.txid::text
         FROM ticked t JOIN _syncline_changes c ON c.id = t.change_id
       ON CONFLICT (tick) DO NOTHING;
     RETURN NULL;
   END
   $fn$`,
  `CREATE OR REPLACE TRIGGER _soak_note_ticks AFTER INSERT ON _syncline_ticks
     REFERENCING NEW TABLE AS ticked FOR EACH STATEMENT EXECUTE FUNCTION _soak_note_ticks()`,
  // Ticks made before the trigger was there (none on a fresh database).
  `INSERT INTO _soak_log_order (tick, origin, mutation_id, txid)
     SELECT t.tick, c.origin, c.mutation_id, c.txid::text
       FROM _syncline_ticks t JOIN _syncline_changes c ON c.id = t.change_id
   ON CONFLICT (tick) DO NOTHING`,
];

/**
 * Makes every tick the server's reader assigns from now on be kept for `readLogOrder`, prunes or
 * not (run in the server process once the server has installed its change log; again after a
 * restart does no harm).
 *
 * @example
 *   await recordLogOrder(server.db);
 */
export async function recordLogOrder(db: Database<any>): Promise<void> {
  for (const text of RECORD_LOG_ORDER) await db.execute(sql.raw(text));
}

/**
 * Reads the first tick of every batch and direct transaction ticked since `recordLogOrder` (run in
 * the server process).
 *
 * @example
 *   const order = await readLogOrder(server.db);
 */
export async function readLogOrder(db: Database<any>): Promise<LogOrder> {
  const rows = await db.execute<{
    tick: string;
    origin: string | null;
    mutation_id: string | null;
    txid: string;
  }>(
    sql`SELECT min(tick)::text AS tick, origin, mutation_id::text AS mutation_id, txid
          FROM _soak_log_order GROUP BY origin, mutation_id, txid`,
  );
  const batch: Record<string, number> = {};
  const tx: Record<string, number> = {};
  for (const row of rows) {
    const tick = Number(row.tick);
    if (row.origin !== null && row.mutation_id !== null) {
      const key = `${row.origin}:${row.mutation_id}`;
      batch[key] = Math.min(batch[key] ?? tick, tick);
    } else {
      tx[row.txid] = Math.min(tx[row.txid] ?? tick, tick);
    }
  }
  return { batch, tx };
}
