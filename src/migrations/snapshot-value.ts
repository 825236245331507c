import { UsageError } from '../errors.js';

/** A value as JSON: plain JSON values as they are, Date / bigint / bytes / non-finite numbers tagged with `$type`. */
export type SnapshotValue = unknown;

/** Encodes a value as JSON, tagging what JSON cannot hold. */
export function encodeSnapshotValue(value: unknown): SnapshotValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    return Number.isFinite(value) ? value : { $type: 'number', value: String(value) };
  }
  if (typeof value === 'bigint') return { $type: 'bigint', value: value.toString() };
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new UsageError('a snapshot cannot hold an invalid Date');
    return { $type: 'date', value: value.toISOString() };
  }
  if (value instanceof Uint8Array) {
    return { $type: 'bytes', value: Array.from(value, (b) => b.toString(16).padStart(2, '0')).join('') };
  }
  if (Array.isArray(value))
    return value.map((item) => (item === undefined ? null : encodeSnapshotValue(item)));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = encodeSnapshotValue(v);
    // An object of the app's own that happens to have a `$type` key is wrapped, so it never reads as a tag.
    return Object.hasOwn(value, '$type') ? { $type: 'object', value: out } : out;
  }
  throw new UsageError(`a snapshot cannot hold a value of type ${typeof value}`);
}

/** The inverse of `encodeSnapshotValue`. */
export function decodeSnapshotValue(value: SnapshotValue): unknown {
  if (Array.isArray(value)) return value.map(decodeSnapshotValue);
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  if (typeof record.$type === 'string') {
    const tagged = record.value;
    switch (record.$type) {
      case 'number':
        return Number(tagged);
      case 'bigint':
        return BigInt(tagged as string);
      case 'date':
        return new Date(tagged as string);
      case 'bytes': {
        const hex = tagged as string;
        const bytes = new Uint8Array(hex.length / 2);
        for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
        return bytes;
      }
      case 'object':
        return decodeObject(tagged as Record<string, unknown>);
      default:
        throw new UsageError(`unknown value tag "${record.$type}" in a schema snapshot`);
    }
  }
  return decodeObject(record);
}

function decodeObject(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) out[k] = decodeSnapshotValue(v);
  return out;
}
