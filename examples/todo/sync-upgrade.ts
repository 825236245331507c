import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * Hands a WebSocket upgrade request on to the sync server's own port, byte for byte, so the page
 * reaches the sync server at `/sync` on the same origin it was loaded from (the sync server
 * listens on an HTTP server of its own and has no way to attach to another). The two sockets are
 * piped both ways and close together.
 *
 * @example
 *   http.on('upgrade', (request, socket, head) => forwardUpgrade(request, socket, head, sync.port));
 */
export function forwardUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, port: number): void {
  // Nagle's algorithm off on both sockets, as ws and Chromium have it on theirs: a frame that
  // reaches the pipe in two chunks must not wait for the first one's (delayed) ACK.
  const upstream = connect({ port, host: '127.0.0.1', noDelay: true });
  if ('setNoDelay' in socket) (socket as Socket).setNoDelay(true);
  const drop = () => {
    socket.destroy();
    upstream.destroy();
  };
  socket.on('error', drop);
  upstream.on('error', drop);
  socket.on('close', drop);
  upstream.on('close', drop);
  upstream.once('connect', () => {
    const lines = [`${request.method} ${request.url} HTTP/${request.httpVersion}`];
    for (let i = 0; i < request.rawHeaders.length; i += 2) {
      lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`);
    }
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    socket.pipe(upstream);
    upstream.pipe(socket);
  });
}
