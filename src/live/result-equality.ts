/**
 * Structural equality of query results: arrays, plain objects, Dates (by time), bytes (by content),
 * bigints and primitives. A live query emits only when its new result is not equal to the last.
 */
export function resultsEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime();
  if (a instanceof Uint8Array) {
    if (!(b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!resultsEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b) || b instanceof Date || b instanceof Uint8Array) return false;
  const keysA = Object.keys(a);
  if (keysA.length !== Object.keys(b).length) return false;
  for (const key of keysA) {
    if (!Object.hasOwn(b, key) || !resultsEqual((a as any)[key], (b as any)[key])) return false;
  }
  return true;
}
