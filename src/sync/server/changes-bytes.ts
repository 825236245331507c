import { type ChangeJson, PROTOCOL_VERSION, type ServerMessage } from '../protocol/messages.js';
import type { TickedBatch } from './change-log-reader.js';

/**
 * `changes` messages already serialized for a hub batch, one per distinct content: connections
 * with the same shapes (and no row filters that tell them apart) get the very same change objects
 * from their filters, so the first one's bytes are sent to all of them instead of every connection
 * stringifying its own copy. Kept while the batch is (in the hub's window); at most
 * `MAX_VARIANTS` contents per batch, so connections that all differ cost a short scan, not memory.
 */
const serialized = new WeakMap<TickedBatch, SerializedChanges[]>();
const MAX_VARIANTS = 8;

interface SerializedChanges {
  readonly from: bigint;
  readonly changes: readonly ChangeJson[];
  readonly bytes: Buffer;
}

function sameChanges(a: readonly ChangeJson[], b: readonly ChangeJson[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The bytes of the `changes` message for `batch` from `from`, serialized once per content.
 *
 * @example
 *   socket.send(changesMessage(batch, connection.sent, filtered));
 */
export function changesMessage(batch: TickedBatch, from: bigint, changes: ChangeJson[]): Buffer {
  const variants = serialized.get(batch) ?? [];
  const found = variants.find((v) => v.from === from && sameChanges(v.changes, changes));
  if (found) return found.bytes;
  const message: ServerMessage = {
    type: 'changes',
    v: PROTOCOL_VERSION,
    from: String(from),
    to: String(batch.to),
    changes,
  };
  const bytes = Buffer.from(JSON.stringify(message));
  if (variants.length < MAX_VARIANTS) {
    variants.push({ from, changes, bytes });
    serialized.set(batch, variants);
  }
  return bytes;
}
