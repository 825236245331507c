/**
 * The order the server applied things in, from its change log: the first tick (commit order) of
 * the changes of each client batch (by client id and mutation id) and of each direct transaction
 * (by transaction id). The model needs it for cascades: a child inserted before its parent's
 * delete goes with it, one inserted after it is refused. The harness reads it before each prune
 * and at the end, and keeps the earliest tick seen.
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

/**
 * Reads the ticks of every ticked change in the log (run in the server process).
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
    sql`SELECT min(t.tick)::text AS tick, c.origin, c.mutation_id::text AS mutation_id, c.txid::text AS txid
          FROM _syncline_changes c JOIN _syncline_ticks t ON t.change_id = c.id
         GROUP BY c.origin, c.mutation_id, c.txid`,
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
