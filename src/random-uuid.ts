/**
 * A v4 uuid, on Node and in browsers alike: `randomUUID` is missing outside secure contexts in
 * browsers, `getRandomValues` is not.
 *
 * @example
 *   const clientId = randomUuid(); // '3b241101-e2bb-4255-8caf-4136c566a962'
 */
export function randomUuid(): string {
  if (typeof globalThis.crypto?.randomUUID === 'function') return globalThis.crypto.randomUUID();
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
