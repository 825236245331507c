import { utf8Length } from '../protocol/message-size.js';

/**
 * What a sync client has exchanged with the server since it was made (`sync.stats()`): bytes and
 * messages each way, when the last message from the server arrived, and how far behind the
 * server's change log the client was at its last catch-up ping (in changes; 0 when it had
 * everything; undefined before the first answer).
 *
 * @example
 *   const { bytesIn, lastMessageAt, behind } = sync.stats();
 */
export interface SyncStats {
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly lastMessageAt: Date | undefined;
  readonly behind: number | undefined;
}

/** Counts a client's traffic across its connections (one per session, many per client). */
export class SyncTraffic {
  private bytesIn = 0;
  private bytesOut = 0;
  private messagesIn = 0;
  private messagesOut = 0;
  private lastMessageAt: number | undefined;
  private behind: number | undefined;

  sent(text: string): void {
    this.messagesOut++;
    this.bytesOut += utf8Length(text);
  }

  received(data: string | Uint8Array): void {
    this.messagesIn++;
    this.bytesIn += typeof data === 'string' ? utf8Length(data) : data.byteLength;
    this.lastMessageAt = Date.now();
  }

  /** A pong said the server's log reached `position` while the client was at `cursor`. */
  measured(position: string | undefined, cursor: string | undefined): void {
    if (position === undefined) return;
    const behind = BigInt(position) - BigInt(cursor ?? '0');
    this.behind = behind > 0n ? Number(behind) : 0;
  }

  snapshot(): SyncStats {
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      lastMessageAt: this.lastMessageAt === undefined ? undefined : new Date(this.lastMessageAt),
      behind: this.behind,
    };
  }
}
