import { MAX_ROW_CHANGES, type RowChange, type RowChanges } from './row-changes.js';

/**
 * What one commit changed: the tables, and for each table the rows when every write to it said
 * which rows (one write without that knowledge, or too many rows, makes the table row-less).
 */
export class ChangeSet {
  readonly tables = new Set<string>();
  private readonly rows = new Map<string, RowChange[] | null>();

  add(table: string, changes?: readonly RowChange[]): void {
    this.tables.add(table);
    const current = this.rows.get(table);
    if (!changes || current === null) {
      this.rows.set(table, null);
      return;
    }
    const list = current ?? [];
    if (list.length + changes.length > MAX_ROW_CHANGES) {
      this.rows.set(table, null);
      return;
    }
    for (const change of changes) list.push(change);
    this.rows.set(table, list);
  }

  merge(other: ChangeSet): void {
    for (const table of other.tables) {
      const rows = other.rows.get(table);
      this.add(table, rows ?? undefined);
    }
  }

  /** The tables whose changed rows are all known. */
  rowChanges(): RowChanges {
    const known = new Map<string, readonly RowChange[]>();
    for (const [table, rows] of this.rows) if (rows) known.set(table, rows);
    return known;
  }
}
