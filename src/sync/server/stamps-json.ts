import type { AnyTable } from '../../schema/table.js';
import { decodeRow, encodeRow, type JsonValue } from '../protocol/value-codec.js';
import type { RowStamps } from './apply-conflicts.js';

/**
 * One column's entry in `_syncline_stamps.cols`: its stamp while the row exists; while the row is
 * deleted with an image, the stamp (null for data from before capture) and the value of the image,
 * encoded as sync messages encode it. The capture trigger only ever writes stamps: a direct insert
 * replaces the whole map, a direct update merges stamps into a live row's map.
 */
type ColumnEntry = string | { readonly hlc: string | null; readonly value: JsonValue };

/**
 * A row's stamps as `_syncline_stamps` holds them (`cols` parsed from JSON). An image is only
 * kept while the row is missing from its table (`exists` false); entries of columns the table no
 * longer has are left out.
 *
 * @example
 *   const stamps = parseStamps(todos, JSON.parse(row.cols), row.created, row.deleted, exists);
 */
export function parseStamps(
  table: AnyTable,
  cols: Record<string, ColumnEntry>,
  created: string | null,
  deleted: string | null,
  exists: boolean,
): RowStamps {
  const stamps: Record<string, string> = {};
  const image: Record<string, JsonValue> = {};
  let hasImage = false;
  for (const [name, entry] of Object.entries(cols)) {
    if (typeof entry === 'string') {
      stamps[name] = entry;
      continue;
    }
    if (entry === null || typeof entry !== 'object' || !table.$columnBySqlName(name)) continue;
    if (entry.hlc !== null) stamps[name] = entry.hlc;
    image[name] = entry.value;
    hasImage = true;
  }
  return {
    cols: stamps,
    created: created ?? undefined,
    deleted: deleted ?? undefined,
    image: hasImage && !exists ? decodeRow(table, image) : undefined,
  };
}

/**
 * The `cols` map to store for a row's stamps: the stamps, or while the row is deleted with an
 * image, stamp and value per column of the image.
 *
 * @example
 *   const cols = stampsJson(todos, state.stamps);
 */
export function stampsJson(table: AnyTable, stamps: RowStamps): Record<string, ColumnEntry> {
  if (!stamps.image) return stamps.cols;
  const values = encodeRow(table, stamps.image);
  const out: Record<string, ColumnEntry> = {};
  for (const [name, value] of Object.entries(values)) out[name] = { hlc: stamps.cols[name] ?? null, value };
  return out;
}
