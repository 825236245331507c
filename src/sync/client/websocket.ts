import { UsageError } from '../../errors.js';

/**
 * The part of the WebSocket API the sync client uses: the browser's `WebSocket`, and the `ws`
 * package's, which implements the same interface on Node.
 *
 * @example
 *   const socket: SyncSocket = new WebSocket('wss://example.com/sync');
 */
export interface SyncSocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void;
  /** `ws` only: drops the connection at once, without a closing handshake. */
  terminate?(): void;
}

/**
 * A WebSocket class: `globalThis.WebSocket` in browsers (and Node 22+), or `ws`'s on Node 20.
 *
 * @example
 *   import { WebSocket } from 'ws';
 *   syncClient(db, { url, shapes, WebSocket });
 */
export type WebSocketConstructor = new (url: string) => SyncSocket;

/**
 * The WebSocket class to use: the one given, else `globalThis.WebSocket`, else the `ws` package
 * loaded with a dynamic import whose specifier is a variable, so bundlers for the browser never
 * pull `ws` in. Throws a message saying what to pass when none is found.
 *
 * @example
 *   const WebSocketClass = await resolveWebSocket(options.WebSocket);
 */
export async function resolveWebSocket(given?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (given) return given;
  const builtIn = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (builtIn) return builtIn;
  const specifier = 'ws';
  try {
    const module = (await import(/* @vite-ignore */ specifier)) as {
      WebSocket?: WebSocketConstructor;
      default?: WebSocketConstructor;
    };
    const found = module.WebSocket ?? module.default;
    if (found) return found;
  } catch {
    // Reported below, with what to do.
  }
  throw new UsageError(
    'syncClient: this runtime has no global WebSocket and the "ws" package could not be loaded; install ws, or pass a WebSocket class in the options ({ WebSocket })',
  );
}
