/**
 * The largest message a sync client reads from the server (`parseServerMessage`'s default): 64 MiB.
 * Whatever the server sends (a snapshot chunk, a `changes` message) must stay under it, or the
 * client drops the connection, reconnects and gets the same message again, forever. The server
 * keeps its messages far smaller (chunks and pages are budgeted in bytes); only a single huge row
 * comes near it, and `MAX_ROW_BYTES` keeps rows well below it.
 *
 * @example
 *   if (utf8Length(json) > MAX_SERVER_MESSAGE_BYTES) skipRow();
 */
export const MAX_SERVER_MESSAGE_BYTES = 64 << 20;

/**
 * The default largest synced row, as its JSON text: 16 MiB. A write that makes a row of a synced
 * table bigger is refused (`installCapture`'s `maxRowBytes`): such a row could not reach clients in one
 * message. A quarter of `MAX_SERVER_MESSAGE_BYTES`, so the protocol's encoding of the row (base64
 * bytes, escaped strings, the message around it) still fits.
 *
 * @example
 *   await installCapture(db, schema.tableList, { maxRowBytes: MAX_ROW_BYTES });
 */
export const MAX_ROW_BYTES = 16 << 20;

/**
 * Bytes of the UTF-8 encoding of `text`, counted without encoding it (a lone surrogate counts 3,
 * as its replacement character is encoded).
 *
 * @example
 *   utf8Length('é'); // 2
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
