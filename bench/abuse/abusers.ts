/**
 * Hostile connections for `npm run bench:abuse`: raw WebSockets that speak the protocol (or fail
 * to) the way an attacker would, each a different signed-in user unless it never says hello. None
 * of them reads what the server sends: its socket is paused, so the server's replies pile up on
 * the server's side of the TCP connection. Each reconnects 50 ms after the server closes it, until
 * told to stop.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import { benchSchema } from '../sync/bench-schema.js';

/**
 * What an abusive connection does:
 * - `invalid`: says hello, then floods small messages the server must refuse;
 * - `pings`: says hello, then floods pings (each one answered with a pong it never reads);
 * - `stalled-snapshot`: says hello with a shape on the seeded `items` table and never reads the snapshot;
 * - `silent`: opens a socket and never says hello.
 *
 * @example
 *   const kinds: AbuseKind[] = ['invalid', 'pings', 'stalled-snapshot', 'silent'];
 */
export type AbuseKind = 'invalid' | 'pings' | 'stalled-snapshot' | 'silent';

/** What each kind sends after hello, one message at a time (about 100 bytes each). */
const FLOOD: Record<'invalid' | 'pings', (i: number) => string> = {
  invalid: (i) => JSON.stringify({ type: 'push', v: PROTOCOL_VERSION, batches: `not a list ${i}` }),
  pings: (i) => JSON.stringify({ type: 'ping', v: PROTOCOL_VERSION, id: `p${i}` }),
};

/** How much the abuser lets its own socket buffer before it waits: it floods, but never grows itself. */
const OWN_BUFFER_BYTES = 1 << 20;

/**
 * One abusive connection, reconnecting while it runs; `sentBytes` counts what it got onto the wire,
 * `connections` how many sockets it opened (the server closing it makes it open another).
 *
 * @example
 *   const abuser = new Abuser(url, 'pings', 'mallory-1', 64 << 20);
 *   await abuser.finished; // after 64 MiB sent, or stop()
 */
export class Abuser {
  sentBytes = 0;
  connections = 0;
  refused = 0;
  private stopped = false;
  private socket: WebSocket | undefined;
  private wakeStopped: () => void = () => {};
  /** Resolves on stop(): a socket that neither writes nor reads cannot see the server close it. */
  private readonly stopSignal = new Promise<void>((resolve) => {
    this.wakeStopped = resolve;
  });
  readonly finished: Promise<void>;

  constructor(
    private readonly url: string,
    readonly kind: AbuseKind,
    private readonly userId: string,
    private readonly budgetBytes = Number.POSITIVE_INFINITY,
  ) {
    this.finished = this.run();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.wakeStopped();
    this.socket?.terminate();
    return this.finished;
  }

  private async run(): Promise<void> {
    // Bounded: it stops when told, or once its byte budget is on the wire.
    while (!this.stopped && this.sentBytes < this.budgetBytes) {
      await this.once();
      if (!this.stopped) await sleep(50);
    }
  }

  /** One socket, from open until the server (or stop()) closes it. */
  private async once(): Promise<void> {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    const opened = await new Promise<boolean>((resolve) => {
      socket.once('open', () => resolve(true));
      socket.once('unexpected-response', (_request, response) => {
        this.refused++;
        response.resume();
        socket.terminate();
        resolve(false);
      });
      socket.once('close', () => resolve(false));
    });
    if (!opened) return;
    this.connections++;
    // Never read: the server's replies stay in its own buffers.
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
    if (this.kind !== 'silent') {
      const shapes = this.kind === 'stalled-snapshot' ? [{ id: 'items', table: 'items' }] : [];
      this.write(
        socket,
        JSON.stringify({
          type: 'hello',
          v: PROTOCOL_VERSION,
          clientId: randomUUID(),
          schemaVersion: benchSchema.version,
          token: this.userId,
          shapes,
        }),
      );
    }
    if (this.kind === 'invalid' || this.kind === 'pings') {
      const next = FLOOD[this.kind];
      for (
        let i = 0;
        !this.stopped && socket.readyState === WebSocket.OPEN && this.sentBytes < this.budgetBytes;
        i++
      ) {
        if (socket.bufferedAmount > OWN_BUFFER_BYTES) {
          await sleep(1);
          continue;
        }
        this.write(socket, next(i));
        if (i % 256 === 255) await sleep(0);
      }
    }
    if (this.sentBytes >= this.budgetBytes) socket.terminate();
    // A paused socket hears of a close only when a write fails: wait for that, or for stop().
    await Promise.race([closed, this.stopSignal]);
    socket.terminate();
  }

  private write(socket: WebSocket, text: string): void {
    socket.send(text);
    this.sentBytes += Buffer.byteLength(text);
  }
}
