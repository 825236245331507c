import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback between sync clients and a server, so tests can cut connections at a
 * chosen moment (in the middle of a push) and see what each side did. `cutAfterClientBytes(n)`
 * drops every connection as soon as clients have sent `n` more bytes through it, mid-frame.
 *
 * @example
 *   const proxy = await startTcpProxy(server.port);
 *   const sync = syncClient(db, { url: `ws://127.0.0.1:${proxy.port}/sync`, token, shapes });
 *   proxy.cutAfterClientBytes(5_000);
 */
export interface TcpProxy {
  readonly port: number;
  /** Bytes clients sent through the proxy so far. */
  readonly clientBytes: number;
  /** Connections cut so far. */
  readonly cuts: number;
  /** How many connections are open through the proxy now. */
  readonly open: number;
  /** Destroys every open connection now. */
  cutAll(): void;
  /** Destroys the connections once clients have sent `bytes` more bytes (the rest is dropped). */
  cutAfterClientBytes(bytes: number): void;
  /** While paused, new connections are refused (the client sees the server as down). */
  setRefusing(refusing: boolean): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let clientBytes = 0;
  let cuts = 0;
  let cutAt: number | undefined;
  let refusing = false;

  const cutAll = () => {
    for (const pair of pairs) {
      pair[0].destroy();
      pair[1].destroy();
    }
    if (pairs.size > 0) cuts++;
    pairs.clear();
  };

  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('data', (chunk: Buffer) => {
      if (cutAt !== undefined && clientBytes + chunk.length >= cutAt) {
        // Forward only the part before the cut: the server sees a frame that never ends.
        const keep = cutAt - clientBytes;
        clientBytes = cutAt;
        cutAt = undefined;
        if (keep > 0) upstream.write(chunk.subarray(0, keep));
        setImmediate(cutAll);
        return;
      }
      clientBytes += chunk.length;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('error', drop);
    upstream.on('error', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');

  return {
    port: address.port,
    get clientBytes() {
      return clientBytes;
    },
    get cuts() {
      return cuts;
    },
    get open() {
      return pairs.size;
    },
    cutAll,
    cutAfterClientBytes(bytes) {
      cutAt = clientBytes + bytes;
    },
    setRefusing(value) {
      refusing = value;
      if (value) cutAll();
    },
    close: () =>
      new Promise<void>((resolve) => {
        cutAll();
        server.close(() => resolve());
      }),
  };
}
