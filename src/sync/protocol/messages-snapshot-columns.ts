import { z } from 'zod';
import { ShapeSchema } from './messages-client.js';
import { NameSchema, PROTOCOL_VERSION, VersionSchema } from './messages-envelope.js';
import { JsonValueSchema } from './messages-json.js';
import { isPosition, PositionSchema } from './messages-position.js';
import type { JsonValue } from './value-codec.js';

/**
 * The name a client lists in its hello's `formats` to say it reads snapshot chunks by column
 * (`SnapshotColumnsSchema`). A server sends them only to a client that listed it; every other
 * client gets chunks of row objects (`SnapshotSchema`), so older clients keep working.
 *
 * @example
 *   send({ type: 'hello', ..., formats: [SNAPSHOT_COLUMNS_FORMAT] });
 */
export const SNAPSHOT_COLUMNS_FORMAT = 'snapshot-columns';

/** PostgreSQL's own limit of columns a table. */
const MAX_COLUMNS = 1600;

const count = z.int().min(0);

/**
 * Server → client: a snapshot chunk by column, the dense form of `SnapshotSchema` for bulk data
 * (no column name repeated per row; a third smaller and parsed in a third of the time). Row `r` is
 * `columns[i]` → `values[i][r]` for every `i`: `values` holds one array per column, all as long as
 * the chunk has rows. Sent only to a client whose hello listed `SNAPSHOT_COLUMNS_FORMAT`.
 *
 * @example
 *   { type: 'snapshot', v: 1, shapeId: 'todos', position: '41', chunk: 0, last: true, totalRows: 2,
 *     columns: ['id', 'title'], values: [['a…', 'b…'], ['Milk', 'Bread']] }
 */
export const SnapshotColumnsSchema = z
  .strictObject({
    type: z.literal('snapshot'),
    v: VersionSchema,
    shapeId: ShapeSchema.shape.id,
    position: PositionSchema,
    chunk: count,
    last: z.boolean(),
    totalRows: count,
    columns: z.array(NameSchema).max(MAX_COLUMNS, `at most ${MAX_COLUMNS} columns`),
    values: z.array(z.array(JsonValueSchema)),
    /** As in `SnapshotSchema`: the shape sent again whole. */
    refresh: z.literal(true).optional(),
  })
  .superRefine((m, ctx) => {
    if (new Set(m.columns).size !== m.columns.length) {
      ctx.addIssue({ code: 'custom', path: ['columns'], message: 'a column is named twice' });
    }
    if (m.values.length !== m.columns.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['values'],
        message: `holds ${m.values.length} columns of values for ${m.columns.length} columns`,
      });
      return;
    }
    const rows = m.values[0]?.length ?? 0;
    m.values.forEach((column, i) => {
      if (column.length !== rows) {
        ctx.addIssue({
          code: 'custom',
          path: ['values', i],
          message: `holds ${column.length} values where column 0 holds ${rows}: every column has one value per row`,
        });
      }
    });
  });
/**
 * A parsed snapshot chunk by column (see `SnapshotColumnsSchema`).
 *
 * @example
 *   const rows = chunk.values[0]?.length ?? 0;
 */
export type SnapshotColumnsMessage = z.output<typeof SnapshotColumnsSchema>;

const KEYS: ReadonlySet<string> = new Set([
  'type',
  'v',
  'shapeId',
  'position',
  'chunk',
  'last',
  'totalRows',
  'columns',
  'values',
  'refresh',
]);

function isCount(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function isName(value: unknown): boolean {
  return typeof value === 'string' && value.length >= 1 && value.length <= 128;
}

/**
 * True when `value` is a chunk `SnapshotColumnsSchema` accepts as it is, checked without zod (a
 * chunk holds thousands of values, which the schema would walk one by one); on false, the schema
 * says what is wrong. Values need no check here: they came from `JSON.parse`, and the client
 * decodes each one for its column.
 *
 * @example
 *   const chunk = isWellFormedSnapshotColumns(value) ? value : SnapshotColumnsSchema.parse(value);
 */
export function isWellFormedSnapshotColumns(value: unknown): value is SnapshotColumnsMessage {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  for (const key in value) if (!KEYS.has(key)) return false;
  const m = value as Record<string, unknown>;
  if (
    m.type !== 'snapshot' ||
    m.v !== PROTOCOL_VERSION ||
    !isName(m.shapeId) ||
    (m.shapeId as string).length > 64 ||
    !isPosition(m.position) ||
    !isCount(m.chunk) ||
    typeof m.last !== 'boolean' ||
    !isCount(m.totalRows) ||
    (m.refresh !== undefined && m.refresh !== true)
  ) {
    return false;
  }
  const { columns, values } = m;
  if (!Array.isArray(columns) || !Array.isArray(values) || columns.length !== values.length) return false;
  if (columns.length > MAX_COLUMNS || !columns.every(isName) || new Set(columns).size !== columns.length)
    return false;
  const rows = Array.isArray(values[0]) ? (values[0] as unknown[]).length : 0;
  for (const column of values as unknown[]) {
    if (!Array.isArray(column) || column.length !== rows) return false;
    for (let r = 0; r < rows; r++) if (column[r] === undefined) return false;
  }
  return true;
}

/**
 * True when `value` claims the column form (it has `columns` or `values`), so a parser reads it
 * with `SnapshotColumnsSchema` rather than the row form's schema.
 *
 * @example
 *   if (claimsSnapshotColumns(value)) return SnapshotColumnsSchema.parse(value);
 */
export function claimsSnapshotColumns(value: unknown): boolean {
  return value !== null && typeof value === 'object' && ('columns' in value || 'values' in value);
}

/**
 * The number of rows a chunk by column holds.
 *
 * @example
 *   progress.rows += columnChunkRows(chunk);
 */
export function columnChunkRows(chunk: Pick<SnapshotColumnsMessage, 'values'>): number {
  return chunk.values[0]?.length ?? 0;
}

/**
 * The rows of a chunk by column as row objects (column name → value), for the paths that take
 * rows one at a time (a careful apply, pending local writes).
 *
 * @example
 *   for (const row of columnChunkToRows(chunk)) writeOne(row);
 */
export function columnChunkToRows(
  chunk: Pick<SnapshotColumnsMessage, 'columns' | 'values'>,
): { [column: string]: JsonValue }[] {
  const rows = columnChunkRows(chunk);
  const out: { [column: string]: JsonValue }[] = new Array(rows);
  for (let r = 0; r < rows; r++) {
    const row: { [column: string]: JsonValue } = {};
    for (let c = 0; c < chunk.columns.length; c++) row[chunk.columns[c]!] = chunk.values[c]![r]!;
    out[r] = row;
  }
  return out;
}
