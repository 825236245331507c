import { SyncProtocolError } from '../../errors.js';

// Written out rather than Buffer (Node only) or btoa/atob (which go through a binary string and
// accept sloppy input): this runs in browsers too, and a sync message must have one spelling.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;
const ENCODE = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));
const PAD = '='.charCodeAt(0);
const ascii = new TextDecoder();

/**
 * Encodes bytes as standard base64 (RFC 4648 section 4, `+/` alphabet, `=` padding), the form
 * blob values take in sync messages. Works without Buffer, in browsers and Node alike.
 *
 * @example
 *   encodeBase64(new Uint8Array([0, 255])); // 'AP8='
 */
export function encodeBase64(bytes: Uint8Array): string {
  // Char codes into a byte array, then one TextDecoder call: far faster than growing a string.
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  const whole = bytes.length - (bytes.length % 3);
  let o = 0;
  for (let i = 0; i < whole; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[o++] = ENCODE[n >> 18];
    out[o++] = ENCODE[(n >> 12) & 63];
    out[o++] = ENCODE[(n >> 6) & 63];
    out[o++] = ENCODE[n & 63];
  }
  const rest = bytes.length - whole;
  if (rest > 0) {
    const n = (bytes[whole] << 16) | (rest === 2 ? bytes[whole + 1] << 8 : 0);
    out[o++] = ENCODE[n >> 18];
    out[o++] = ENCODE[(n >> 12) & 63];
    out[o++] = rest === 2 ? ENCODE[(n >> 6) & 63] : PAD;
    out[o] = PAD;
  }
  return ascii.decode(out);
}

function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index);
  const value = code < 128 ? DECODE[code] : -1;
  if (value < 0) {
    throw new SyncProtocolError(
      `invalid base64: unexpected character ${JSON.stringify(text[index])} at position ${index}`,
    );
  }
  return value;
}

/**
 * Decodes standard padded base64 as `encodeBase64` writes it, strictly: a length that is a
 * multiple of 4, only the `A-Z a-z 0-9 + /` alphabet, `=` only as final padding, and no stray
 * bits in the last character. Anything else throws `SyncProtocolError` saying where it went wrong.
 *
 * @example
 *   decodeBase64('AP8='); // Uint8Array [0, 255]
 */
export function decodeBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0) {
    throw new SyncProtocolError(
      `invalid base64: its length ${text.length} is not a multiple of 4 (padding with '=' is required)`,
    );
  }
  if (text.length === 0) return new Uint8Array(0);
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  const whole = padding === 0 ? text.length : text.length - 4;
  let o = 0;
  for (let i = 0; i < whole; i += 4) {
    const n =
      (sextet(text, i) << 18) |
      (sextet(text, i + 1) << 12) |
      (sextet(text, i + 2) << 6) |
      sextet(text, i + 3);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  if (padding > 0) {
    const a = sextet(text, whole);
    const b = sextet(text, whole + 1);
    if (padding === 2) {
      if (b & 15)
        throw new SyncProtocolError('invalid base64: the last character before "==" has stray bits');
      out[o] = (a << 2) | (b >> 4);
    } else {
      const c = sextet(text, whole + 2);
      if (c & 3) throw new SyncProtocolError('invalid base64: the last character before "=" has stray bits');
      out[o++] = (a << 2) | (b >> 4);
      out[o] = ((b & 15) << 4) | (c >> 2);
    }
  }
  return out;
}
