/**
 * What is known of one row a write changed: its column values (by SQL column name) before and
 * after. `null` means the row did not exist (before an insert, after a delete); `undefined` means
 * nothing is known; a column missing from an image is unknown.
 */
export interface RowChange {
  readonly before: Readonly<Record<string, unknown>> | null | undefined;
  readonly after: Readonly<Record<string, unknown>> | null | undefined;
}

/** Row changes per table; a table that was written but is absent here changed in unknown ways. */
export type RowChanges = ReadonlyMap<string, readonly RowChange[]>;

/** Beyond this many rows in one commit a table is reported without rows: re-running is cheaper. */
export const MAX_ROW_CHANGES = 1000;
