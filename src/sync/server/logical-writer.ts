import type { Database } from '../../database/database.js';
import type { Transaction } from '../../database/transaction.js';
import type { LogicalConsumer } from './logical-consumer.js';

/** The databases whose server captures by logical replication, with their consumer. */
const logicalDatabases = new WeakMap<Database, LogicalConsumer>();
/** The push transactions on such a database that have named their writer. */
const logicalTransactions = new WeakMap<Transaction, LogicalConsumer>();

/**
 * Marks `db` as captured by logical replication (createSyncServer does), so that pushes on it
 * name their writer in the WAL and wait for the consumer before they read stamps.
 *
 * @example
 *   registerLogicalCapture(db, consumer);
 */
export function registerLogicalCapture(db: Database, consumer: LogicalConsumer): void {
  logicalDatabases.set(db, consumer);
}

/**
 * In logical mode, tells the consumer who writes what follows in this push transaction: the
 * settings the trigger mode's triggers read (`syncline.hlc`, `.origin`, `.mutation`,
 * `.updating`, `.mutator`), as they are now, go into the WAL as a transactional logical message,
 * in order with the rows (docs/design.md section 4, "Capture modes"). Call it after every change
 * of those settings (`db` with the first call of a transaction). Nothing in trigger mode.
 *
 * @example
 *   await run(tx, "SELECT set_config('syncline.hlc', $1, true)", [hlc]);
 *   await announceWriter(tx, ctx.db);
 */
export async function announceWriter(tx: Transaction, db?: Database): Promise<void> {
  const consumer = (db && logicalDatabases.get(db)) ?? logicalTransactions.get(tx);
  if (!consumer) return;
  logicalTransactions.set(tx, consumer);
  await tx.run({
    sql: `SELECT pg_logical_emit_message(true, 'syncline', json_build_object(
            'h', current_setting('syncline.hlc', true), 'o', current_setting('syncline.origin', true),
            'm', current_setting('syncline.mutation', true), 'u', current_setting('syncline.updating', true),
            'x', current_setting('syncline.mutator', true), 'w', current_setting('syncline.writers', true))::text)`,
    params: [],
    arrayMode: false,
    needsBigInt: false,
  });
}

/**
 * In logical mode, waits (inside a push, after its app rows are locked and before their stamps are
 * read) until the consumer has logged and stamped every transaction that committed before now (a
 * barrier, see logical-barrier.ts): a direct write that committed just before would otherwise have
 * no stamp yet, and an older pushed change would win over it. Bounded by `logical.waitTimeoutMs`; then it fails with a DatabaseError
 * and the push is answered `push_failed` (pushed again later). Nothing in trigger mode.
 *
 * @example
 *   await tx.execute(sql`SELECT 1 FROM ${table} WHERE ... FOR UPDATE`);
 *   await awaitCapture(tx);
 */
export async function awaitCapture(tx: Transaction): Promise<void> {
  const consumer = logicalTransactions.get(tx);
  if (!consumer) return;
  await consumer.caughtUp();
}
