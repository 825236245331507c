import type { Database } from '../../database/database.js';
import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { UsageError } from '../../errors.js';
import type { AnyTable } from '../../schema/table.js';
import { MAX_ROW_BYTES } from '../protocol/message-size.js';

/**
 * The SQLSTATE of a refused row: 22001 (string_data_right_truncation, "value too long"), a data
 * exception, so a push that makes a row too big is rejected (the client rolls it back and hears
 * why) rather than failed and tried again forever.
 */
const TOO_LONG = '22001';

const CHECK_FUNCTION = `CREATE OR REPLACE FUNCTION _syncline_check_row_size() RETURNS trigger
  LANGUAGE plpgsql AS $fn$
  DECLARE
    max_bytes bigint := TG_ARGV[0]::bigint;
    found_bytes bigint;
  BEGIN
    SELECT s.bytes INTO found_bytes
      FROM (SELECT octet_length(to_jsonb(r)::text) AS bytes FROM _syncline_written_rows r) s
     WHERE s.bytes > max_bytes LIMIT 1;
    IF found_bytes IS NOT NULL THEN
      RAISE EXCEPTION 'a row of table "%" would be % bytes as JSON, over the limit of % bytes for a synced row (maxRowBytes): no sync message could carry it to clients; store large values elsewhere (object storage, a local table) and sync a reference to them',
        TG_TABLE_NAME, found_bytes, max_bytes USING ERRCODE = '${TOO_LONG}';
    END IF;
    RETURN NULL;
  END
  $fn$`;

/**
 * The statements that refuse rows too big to sync: a check function, then on each synced table a
 * statement trigger after INSERT and one after UPDATE that measure every written row as JSON
 * (`to_jsonb`, as the change log writes it) and fail the statement when one is over `maxRowBytes`,
 * with SQLSTATE 22001 and a message that names the table and the sizes. Meant to be run with the
 * change capture's own DDL (same transaction, same lock handling).
 *
 * @example
 *   for (const statement of rowSizeGuardDdl(schema.tableList)) await run(statement);
 */
export function rowSizeGuardDdl(tables: readonly AnyTable[], maxRowBytes = MAX_ROW_BYTES): string[] {
  if (!Number.isInteger(maxRowBytes) || maxRowBytes < 1) {
    throw new UsageError(`maxRowBytes must be a whole number of at least 1, got ${String(maxRowBytes)}`);
  }
  const statements = [CHECK_FUNCTION];
  for (const table of tables) {
    if (table.$local) continue;
    const name = quoteIdentifier(table.$name);
    for (const event of ['INSERT', 'UPDATE']) {
      statements.push(
        `CREATE OR REPLACE TRIGGER _syncline_row_size_${event.toLowerCase()} AFTER ${event} ON ${name}
           REFERENCING NEW TABLE AS _syncline_written_rows FOR EACH STATEMENT
           EXECUTE FUNCTION _syncline_check_row_size('${maxRowBytes}')`,
      );
    }
  }
  return statements;
}

/**
 * Installs the row size guard (`rowSizeGuardDdl`) on the synced tables, in one transaction. A
 * write that would make a row of a synced table bigger than `maxRowBytes` of JSON (default
 * `MAX_ROW_BYTES`, 16 MiB) then fails, whoever makes it: a push is rejected with the message, a
 * backend `INSERT` gets the error. Without it such a row could reach no client (a message that big
 * is refused by the client, which would reconnect and get it again, forever).
 *
 * @example
 *   await installRowSizeGuard(server.db, appSchema.tableList, 4 << 20);
 */
export async function installRowSizeGuard(
  db: Database,
  tables: readonly AnyTable[],
  maxRowBytes = MAX_ROW_BYTES,
): Promise<void> {
  if (db.dialect.name !== 'postgres') {
    throw new UsageError('installRowSizeGuard() works on PostgreSQL (or PGlite)');
  }
  const statements = rowSizeGuardDdl(tables, maxRowBytes);
  await db.transaction(async (tx) => {
    for (const statement of statements) {
      await tx.run({ sql: statement, params: [], arrayMode: false, needsBigInt: false });
    }
  });
}
