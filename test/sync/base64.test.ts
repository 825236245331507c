import { describe, expect, it } from 'vitest';
import { SyncProtocolError } from '../../src/errors.js';
import { decodeBase64, encodeBase64 } from '../../src/sync/protocol/base64.js';

/**
 * Blob values travel as standard padded base64, written without Buffer so the browser build can
 * use it. It must agree with the platform's encoder, and decoding must accept one spelling only.
 */

/** The platform's own base64 (btoa), for comparison. */
function platformBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

describe('base64', () => {
  it('matches the RFC 4648 test vectors', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'Zg=='],
      ['fo', 'Zm8='],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg=='],
      ['fooba', 'Zm9vYmE='],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, encoded] of vectors) {
      const bytes = new TextEncoder().encode(plain);
      expect(encodeBase64(bytes)).toBe(encoded);
      expect(decodeBase64(encoded)).toEqual(bytes);
    }
  });

  it('agrees with btoa and round-trips every length and byte value', () => {
    let seed = 1;
    for (let length = 0; length < 300; length++) {
      const bytes = Uint8Array.from({ length }, (_, i) =>
        length < 256 ? (i + length) & 255 : (seed = (seed * 48271) % 2147483647) & 255,
      );
      const encoded = encodeBase64(bytes);
      expect(encoded).toBe(platformBase64(bytes));
      expect(decodeBase64(encoded)).toEqual(bytes);
    }
  });

  it('handles large inputs', () => {
    const bytes = Uint8Array.from({ length: 1_000_003 }, (_, i) => (i * 31) & 255);
    const encoded = encodeBase64(bytes);
    expect(encoded.length).toBe(1_333_340);
    expect(encoded).toBe(Buffer.from(bytes).toString('base64'));
    const decoded = decodeBase64(encoded);
    expect(decoded.length).toBe(bytes.length);
    // toEqual over a million elements is slow; the first differing index says as much.
    expect(decoded.findIndex((byte, i) => byte !== bytes[i])).toBe(-1);
  });

  it.each([
    ['Zg=', /length 3 is not a multiple of 4/],
    ['Zg', /length 2/],
    ['Zm9v Zg==', /length 9/],
    ['Zm9vYg=\n', /unexpected character "=" at position 6/],
    ['Zm9-', /unexpected character "-" at position 3/],
    ['Zm9_', /unexpected character "_"/],
    ['Zm9é', /unexpected character "é"/],
    ['====', /unexpected character "=" at position 0/],
    ['Z===', /unexpected character "=" at position 1/],
    ['Zg=a', /unexpected character "=" at position 2/],
    ['Zg==Zg==', /unexpected character "=" at position 2/],
    ['Zh==', /stray bits/],
    ['Zm9=', /stray bits/],
  ])('rejects %j', (text, message) => {
    expect(() => decodeBase64(text)).toThrow(SyncProtocolError);
    expect(() => decodeBase64(text)).toThrow(message);
  });
});
