import { entityKind } from '../../entity.js';
import { SynclineError } from '../../errors.js';
import type { SyncSocket, WebSocketConstructor } from './websocket.js';

/**
 * The connection to the sync server failed or dropped: it could not be opened, closed on its
 * own, or stayed silent past the keep-alive. The client retries with backoff; these are reported
 * through the `error` event so an app can show that it is offline and why.
 *
 * @example
 *   sync.on('error', (e) => { if (e instanceof SyncConnectionError) showOffline(e.message); });
 */
export class SyncConnectionError extends SynclineError {
  static override readonly [entityKind]: string = 'SyncConnectionError';
  /** The WebSocket close code, when the socket closed with one. */
  readonly code: number | undefined;
  constructor(message: string, code?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * What a `Connection` reports: opened, a frame arrived, time for a keep-alive ping, and closed
 * (once, with why: undefined when closed on purpose).
 *
 * @example
 *   const events: ConnectionEvents = { open: sendHello, message: handle, keepAlive: ping, closed: retry };
 */
export interface ConnectionEvents {
  open(): void;
  message(data: string | Uint8Array): void;
  keepAlive(): void;
  closed(error: Error | undefined): void;
  /** Hears every frame sent (the client's traffic counts). */
  sent?(text: string): void;
}

const OPEN = 1;

function frameData(data: unknown): string | Uint8Array {
  if (typeof data === 'string' || data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return String(data);
}

/**
 * One WebSocket to the sync server, with a keep-alive: every `keepAliveMs` it asks for a ping (the
 * server answers with `pong`), and a connection from which nothing at all arrived for two of those
 * intervals is dropped, so a half-open connection (a laptop that slept, a NAT that forgot it) is
 * noticed and the client reconnects. `closed` is reported exactly once.
 *
 * @example
 *   const connection = new Connection(WebSocket, url, 15_000, { open, message, keepAlive, closed });
 *   connection.send(JSON.stringify(hello));
 */
export class Connection {
  private readonly socket: SyncSocket;
  private readonly timer: ReturnType<typeof setInterval>;
  private heard = true;
  private missed = 0;
  private ended = false;

  constructor(
    WebSocketClass: WebSocketConstructor,
    private readonly url: string,
    private readonly keepAliveMs: number,
    private readonly events: ConnectionEvents,
  ) {
    try {
      this.socket = new WebSocketClass(url);
    } catch (cause) {
      throw new SyncConnectionError(
        `cannot open a WebSocket to ${url}: ${(cause as Error).message}`,
        undefined,
        {
          cause,
        },
      );
    }
    this.socket.addEventListener('open', () => {
      this.heard = true;
      if (!this.ended) events.open();
    });
    this.socket.addEventListener('message', (event: { data: unknown }) => {
      this.heard = true;
      if (!this.ended) events.message(frameData(event.data));
    });
    this.socket.addEventListener('error', (event: { message?: string; error?: Error }) => {
      const detail = event?.error?.message ?? event?.message;
      this.end(new SyncConnectionError(`WebSocket error on ${url}${detail ? `: ${detail}` : ''}`));
    });
    this.socket.addEventListener('close', (event: { code?: number; reason?: string }) => {
      const reason = event?.reason ? ` (${event.reason})` : '';
      this.end(
        new SyncConnectionError(
          `the server closed the connection with code ${event?.code}${reason}`,
          event?.code,
        ),
      );
    });
    this.timer = setInterval(() => this.tick(), keepAliveMs);
  }

  private tick(): void {
    if (this.heard) {
      this.heard = false;
      this.missed = 0;
    } else if (++this.missed >= 2) {
      this.drop(
        new SyncConnectionError(`no answer from ${this.url} in ${2 * this.keepAliveMs} ms; reconnecting`),
      );
      return;
    }
    if (this.socket.readyState === OPEN) this.events.keepAlive();
  }

  /** True while the socket is open and not closed by this side. */
  get open(): boolean {
    return !this.ended && this.socket.readyState === OPEN;
  }

  /** Sends one text frame; false when the socket is not open (the frame is dropped). */
  send(text: string): boolean {
    if (!this.open) return false;
    this.socket.send(text);
    this.events.sent?.(text);
    return true;
  }

  /** Drops the connection now, reporting `error` (or a deliberate close when undefined). */
  drop(error?: Error): void {
    if (this.ended) return;
    this.end(error);
    try {
      // `ws` can end the TCP connection at once; a browser socket closes with a handshake.
      if (this.socket.terminate) this.socket.terminate();
      else this.socket.close(error ? 4000 : 1000);
    } catch {
      // Closing a socket that failed to open may throw; it is gone either way.
    }
  }

  private end(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    this.events.closed(error);
  }
}
