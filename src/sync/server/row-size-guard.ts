import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { UsageError } from '../../errors.js';
import type { AnyColumn } from '../../schema/column.js';
import type { AnyTable } from '../../schema/table.js';

/**
 * The SQLSTATE of a refused row: 22001 (string_data_right_truncation, "value too long"), a data
 * exception, so a push that makes a row too big is rejected (the client rolls it back and hears
 * why) rather than failed and tried again forever.
 */
const TOO_LONG = '22001';

/**
 * Types whose `octet_length` is their raw size, read from the value's header without detoasting
 * it (json is text underneath). Other types count by `pg_column_size`, their stored size (small,
 * or compressed for jsonb and arrays).
 */
const RAW_LENGTH = /^\s*(text|varchar|character varying|char|character|bpchar|citext|json|bytea)\b/i;

/** Room for a column's name, quotes and separators in the row's JSON. */
const PER_COLUMN = 16;

/**
 * An estimate, in SQL, of a row's size as the sync protocol carries it, cheap enough to run on every
 * written row: the raw length of each text, json and bytea value (no JSON is built, no toasted
 * value is read), the stored size of the others. Escaping and base64 can make the JSON bigger, up
 * to about 2x for bytea; the limit it is checked against leaves 4x room below the largest message
 * a client reads (`MAX_SERVER_MESSAGE_BYTES`).
 *
 * @example
 *   const sql = `SELECT ${rowSizeEstimate(todos, 'n', (c) => 'text')} FROM todos n`;
 */
export function rowSizeEstimate(table: AnyTable, row: string, sqlType: (c: AnyColumn) => string): string {
  const terms = table.$columnList.map((c) => {
    const cell = `${row}.${quoteIdentifier(c.name)}`;
    return RAW_LENGTH.test(sqlType(c))
      ? `coalesce(octet_length(${cell}::text), 0)`
      : `coalesce(pg_column_size(${cell}), 0)`;
  });
  return `(${terms.join(' + ')} + ${PER_COLUMN * table.$columnList.length})`;
}

/**
 * The plpgsql RAISE a capture trigger runs for a row too big to sync, `found` (SQL) its estimated
 * size: SQLSTATE 22001 and a message naming the table and the sizes.
 *
 * @example
 *   const raise = rowSizeRaise('too_big', MAX_ROW_BYTES);
 */
export function rowSizeRaise(found: string, maxRowBytes: number): string {
  if (!Number.isInteger(maxRowBytes) || maxRowBytes < 1) {
    throw new UsageError(`maxRowBytes must be a whole number of at least 1, got ${String(maxRowBytes)}`);
  }
  return `RAISE EXCEPTION 'a row of table "%" would be about % bytes, over the limit of % bytes for a synced row (maxRowBytes): no sync message could carry it to clients; store large values elsewhere (object storage, a local table) and sync a reference to them',
       TG_TABLE_NAME, ${found}, ${maxRowBytes} USING ERRCODE = '${TOO_LONG}';`;
}

/**
 * The plpgsql statement a capture trigger runs to refuse rows too big to sync: over `maxRowBytes` by
 * `rowSizeEstimate`, the write fails with SQLSTATE 22001 and a message naming the table and the
 * sizes, whoever makes it (a push is then rejected with that reason; a backend's INSERT or UPDATE
 * gets the error). Without it such a row could reach no client: a message that big is refused by the
 * client, which would reconnect and get it again, forever. `rows` is a transition table (statement
 * triggers) or undefined for a row trigger's NEW. (The update capture checks the rows it logs in
 * its own statement, with `rowSizeEstimate` and `rowSizeRaise`.)
 *
 * @example
 *   const check = rowSizeCheck(todos, 'new_rows', sqlType, MAX_ROW_BYTES);
 */
export function rowSizeCheck(
  table: AnyTable,
  rows: string | undefined,
  sqlType: (c: AnyColumn) => string,
  maxRowBytes: number,
): string {
  if (rows === undefined) {
    return `IF ${rowSizeEstimate(table, 'NEW', sqlType)} > ${maxRowBytes} THEN
       ${rowSizeRaise(rowSizeEstimate(table, 'NEW', sqlType), maxRowBytes)}
     END IF;`;
  }
  return `DECLARE too_big bigint; BEGIN
       SELECT s.bytes INTO too_big FROM (SELECT ${rowSizeEstimate(table, 'n', sqlType)} AS bytes FROM ${rows} AS n) s
        WHERE s.bytes > ${maxRowBytes} LIMIT 1;
       IF too_big IS NOT NULL THEN
         ${rowSizeRaise('too_big', maxRowBytes)}
       END IF;
     END;`;
}
