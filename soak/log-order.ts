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
 *
 * A batch none of whose changes was logged (each lost to a newer stamp, deleted a row already
 * deleted, updated a deleted row or one that never existed) has no tick, yet where it was applied
 * still matters: an update of a row the server never had is dropped, one of a deleted row goes
 * into its image, a delete of a parent already gone cascades to nothing. Acks do not tell: one
 * client's ack can arrive long before another client's for a batch that committed earlier
 * (PostgreSQL, 100 seeds on an overloaded machine: seeds 67, 73 and 92 placed such a batch by its
 * ack, before the delete or the insert it came after, and reported three false lost writes). So
 * each batch's transaction also notes, as it moves the client's last mutation id (in its last
 * statement, after every row lock it waited for), the snapshot it then saw: the batch goes after
 * every tick of a transaction that had committed by then.
 *
 * That snapshot is the latest the batch's reads can have seen, not the one they saw: a row the
 * batch found missing is not locked, so an insert of it that commits while the batch goes on is
 * in the snapshot of its last statement, though the batch never saw the row (PostgreSQL, seed 54:
 * a delete that found no row, stored nothing, and was placed after the insert its reads missed,
 * so the model deleted the row the server rightly kept). So the snapshot of the batch's first
 * statement is noted too: the batch read somewhere between the two, and the checker places it
 * at the latest point of that window where it changes nothing, as its empty log says.
 */
import { type Database, sql } from '../src/index.js';

/**
 * Ticks of the log: `batch` maps `clientId:mutationId`, `tx` maps a transaction id, to the first
 * tick of its changes; a batch that logged nothing maps to a place between two ticks (a fraction
 * after the last tick its transaction saw committed), and in `began` to the last tick its
 * transaction's first statement saw committed (the batch read the rows it found somewhere after
 * that tick and before its place).
 *
 * @example
 *   const order = await server.call<LogOrder>('logOrder', undefined, 10_000);
 */
export interface LogOrder {
  readonly batch: Record<string, number>;
  readonly tx: Record<string, number>;
  readonly began: Record<string, number>;
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
  `CREATE TABLE IF NOT EXISTS _soak_batch_order (
     origin text NOT NULL,
     mutation_id bigint NOT NULL,
     txid xid8 NOT NULL,
     seen pg_snapshot NOT NULL,
     began pg_snapshot,
     PRIMARY KEY (origin, mutation_id)
   )`,
  // A batch's first statement locks (or creates) its client's row: the snapshot then, by transaction.
  `CREATE TABLE IF NOT EXISTS _soak_batch_start (txid xid8 PRIMARY KEY, seen pg_snapshot NOT NULL)`,
  `CREATE OR REPLACE FUNCTION _soak_note_start() RETURNS trigger LANGUAGE plpgsql AS $fn$
   BEGIN
     INSERT INTO _soak_batch_start (txid, seen) VALUES (pg_current_xact_id(), pg_current_snapshot())
       ON CONFLICT (txid) DO NOTHING;
     RETURN NULL;
   END
   $fn$`,
  `CREATE OR REPLACE TRIGGER _soak_note_start AFTER INSERT OR UPDATE ON _syncline_clients
     FOR EACH ROW EXECUTE FUNCTION _soak_note_start()`,
  // Every run of a batch sets the last mutation id (a rejection's transaction does too): the last
  // run's snapshot is the latest the batch saw before it committed.
  `CREATE OR REPLACE FUNCTION _soak_note_batch() RETURNS trigger LANGUAGE plpgsql AS $fn$
   BEGIN
     INSERT INTO _soak_batch_order (origin, mutation_id, txid, seen, began)
       VALUES (NEW.client_id, NEW.last_mutation_id, pg_current_xact_id(), pg_current_snapshot(),
               (SELECT s.seen FROM _soak_batch_start s WHERE s.txid = pg_current_xact_id()))
       ON CONFLICT (origin, mutation_id)
         DO UPDATE SET txid = excluded.txid, seen = excluded.seen, began = excluded.began;
     RETURN NULL;
   END
   $fn$`,
  `CREATE OR REPLACE TRIGGER _soak_note_batch AFTER UPDATE OF last_mutation_id ON _syncline_clients
     FOR EACH ROW EXECUTE FUNCTION _soak_note_batch()`,
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
 * Reads the first tick of every batch and direct transaction ticked since `recordLogOrder`, and
 * the place of every batch that logged nothing (run in the server process).
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
  const unlogged = await unloggedPlaces(db);
  for (const [key, place] of Object.entries(unlogged.places)) batch[key] ??= place;
  return { batch, tx, began: unlogged.began };
}

/** The last tick of a transaction that `snapshot` (a column of `b`) saw committed, 0 for none. */
function lastTickSeen(snapshot: string) {
  return sql.raw(`coalesce((SELECT max(o.tick) FROM _soak_log_order o
                             WHERE o.txid::xid8 < pg_snapshot_xmax(b.${snapshot})
                               AND pg_visible_in_snapshot(o.txid::xid8, b.${snapshot})), 0)::text`);
}

/**
 * The place of each batch whose changes were never ticked: after the last tick of a transaction
 * its own transaction saw committed; batches after the same tick go in the order of their
 * transaction ids, each a fraction further.
 */
async function unloggedPlaces(
  db: Database<any>,
): Promise<{ places: Record<string, number>; began: Record<string, number> }> {
  const rows = await db.execute<{ origin: string; mutation_id: string; after: string; began: string | null }>(
    sql`SELECT b.origin, b.mutation_id::text AS mutation_id, ${lastTickSeen('seen')} AS after,
               CASE WHEN b.began IS NOT NULL THEN ${lastTickSeen('began')} END AS began
          FROM _soak_batch_order b
         WHERE NOT EXISTS (SELECT 1 FROM _soak_log_order o
                            WHERE o.origin = b.origin AND o.mutation_id = b.mutation_id)
         ORDER BY b.txid`,
  );
  const byTick = new Map<number, string[]>();
  const began: Record<string, number> = {};
  for (const row of rows) {
    if (row.began !== null) began[`${row.origin}:${row.mutation_id}`] = Number(row.began);
    const after = Number(row.after);
    byTick.set(after, [...(byTick.get(after) ?? []), `${row.origin}:${row.mutation_id}`]);
  }
  const places: Record<string, number> = {};
  for (const [after, keys] of byTick) {
    for (const [i, key] of keys.entries()) places[key] = after + (i + 1) / (keys.length + 1);
  }
  return { places, began };
}
