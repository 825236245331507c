import type { AnyTable } from '../../schema/table.js';
import { decodeRow, encodeRow, type JsonValue } from '../protocol/value-codec.js';
import type { RowStamps } from './apply-conflicts.js';
import { decodeLogRow } from './log-values.js';

/**
 * One column's entry in `_syncline_stamps.cols`: its stamp; while the row is deleted, a column set
 * by an update that arrived since holds the stamp and that value (encoded as sync messages encode
 * it), which replaces the image's. Stamps written by older versions hold every column of a deleted
 * row so, with a null stamp for data from before capture, and no `image`.
 */
type ColumnEntry = string | { readonly hlc: string | null; readonly value: JsonValue };

/**
 * A row's stamps as `_syncline_stamps` holds them (`cols` and `image` parsed from JSON): `image`
 * is the deleted row as the capture trigger logged it (`decodeLogRow` reads it), whoever deleted
 * it. An image is only kept while the row is missing from its table (`exists` false); values of
 * columns the table no longer has are left out.
 *
 * @example
 *   const stamps = parseStamps(todos, JSON.parse(row.cols), row.image && JSON.parse(row.image), row.created, row.deleted, exists);
 */
export function parseStamps(
  table: AnyTable,
  cols: Record<string, ColumnEntry>,
  image: Record<string, unknown> | null,
  created: string | null,
  deleted: string | null,
  exists: boolean,
): RowStamps {
  const stamps: Record<string, string> = {};
  const updated: Record<string, JsonValue> = {};
  for (const [name, entry] of Object.entries(cols)) {
    if (typeof entry === 'string') {
      stamps[name] = entry;
      continue;
    }
    if (entry === null || typeof entry !== 'object' || !table.$columnBySqlName(name)) continue;
    if (entry.hlc !== null) stamps[name] = entry.hlc;
    updated[name] = entry.value;
  }
  const kept = Object.keys(updated);
  const withImage = !exists && (image !== null || kept.length > 0);
  return {
    cols: stamps,
    created: created ?? undefined,
    deleted: deleted ?? undefined,
    image: withImage ? { ...(image && decodeLogRow(table, image)), ...decodeRow(table, updated) } : undefined,
    updatedInImage: new Set(withImage ? kept : []),
  };
}

/**
 * The `cols` map to store for a row's stamps: the stamps, and while the row is deleted with an
 * image, stamp and value of each column an update set since (`updatedInImage`). The image itself
 * stays as the capture trigger wrote it.
 *
 * @example
 *   const cols = stampsJson(todos, state.stamps);
 */
export function stampsJson(table: AnyTable, stamps: RowStamps): Record<string, ColumnEntry> {
  if (!stamps.image || stamps.updatedInImage.size === 0) return stamps.cols;
  const updated = Object.fromEntries([...stamps.updatedInImage].map((name) => [name, stamps.image![name]]));
  const out: Record<string, ColumnEntry> = { ...stamps.cols };
  for (const [name, value] of Object.entries(encodeRow(table, updated))) {
    out[name] = { hlc: stamps.cols[name] ?? null, value };
  }
  return out;
}
