import { SyncProtocolError } from '../../errors.js';

const DIGITS = '0123456789abcdef';

/**
 * Bytes as lower-case hex, without Buffer (this runs in browsers too).
 *
 * @example
 *   bytesToHex(new Uint8Array([0, 255])); // '00ff'
 */
export function bytesToHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += DIGITS[bytes[i] >> 4] + DIGITS[bytes[i] & 15];
  return out;
}

function nibble(text: string, index: number): number {
  const c = text.charCodeAt(index);
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  throw new SyncProtocolError(
    `invalid hex text from SQLite's hex(): unexpected character ${JSON.stringify(text[index])} at ${index}`,
  );
}

/**
 * Hex text (as SQLite's `hex()` writes it, upper-case) back to bytes.
 *
 * @example
 *   hexToBytes('00FF'); // Uint8Array [0, 255]
 */
export function hexToBytes(text: string): Uint8Array {
  if (text.length % 2 !== 0) {
    throw new SyncProtocolError(`invalid hex text from SQLite's hex(): odd length ${text.length}`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = (nibble(text, 2 * i) << 4) | nibble(text, 2 * i + 1);
  return out;
}
