/**
 * A TCP proxy on loopback between one soak client and the sync server that can hurt the
 * connection the way networks do: cut it after a few more bytes either way (mid-frame), stall it
 * (nothing forwarded for a while, then everything), delay every chunk, refuse new connections.
 * The server it forwards to can change (`retarget`) when the server restarts on another port.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A running fault proxy.
 *
 * @example
 *   const proxy = await startFaultProxy(serverPort);
 *   syncClient(db, { url: `ws://127.0.0.1:${proxy.port}/sync` });
 *   proxy.cutAfter(40, true);   // the next 40 bytes to the server go through, then the cut
 *   proxy.stall(2000);          // nothing moves for 2 s
 */
export interface FaultProxy {
  readonly port: number;
  /** Connections cut so far (by `cutAll`, `cutAfter` or refusing). */
  readonly cuts: number;
  /** Destroys every open connection now. */
  cutAll(): void;
  /** Lets `bytes` more bytes through in one direction (to the server, or to the client), then cuts. */
  cutAfter(bytes: number, toServer: boolean): void;
  /** Holds every byte either way for `ms`, then forwards what was held, in order. */
  stall(ms: number): void;
  /** For `forMs`, forwards each chunk `delayMs` late (order kept). */
  delay(delayMs: number, forMs: number): void;
  /** While refusing, open connections are cut and new ones closed at once. */
  setRefusing(refusing: boolean): void;
  /** Ends every stall, delay and pending cut at once (open connections go on). */
  heal(): void;
  /**
   * Forwards new connections to `port` from now on; `undefined` (the server is down) closes new
   * connections at once, as a dead server's port would refuse them: forwarding to the old port
   * could reach whatever other process took it meanwhile.
   */
  retarget(port: number | undefined): void;
  /** Ends every connection and the listener; safe to call twice. */
  close(): Promise<void>;
}

interface Pipe {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Chunks waiting to be written, per direction, while stalled or delayed. */
  readonly queues: { toServer: Buffer[]; toClient: Buffer[] };
}

/**
 * Starts a fault proxy on 127.0.0.1 (a free port) forwarding to `targetPort` on 127.0.0.1.
 *
 * @example
 *   const proxy = await startFaultProxy(4000);
 *   await proxy.close();
 */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const pipes = new Set<Pipe>();
  let target: number | undefined = targetPort;
  let cuts = 0;
  let refusing = false;
  let stalledUntil = 0;
  let delayUntil = 0;
  let delayMs = 0;
  let cutBudget: { bytes: number; toServer: boolean } | undefined;
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const later = (fn: () => void, ms: number) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const cutAll = () => {
    if (pipes.size > 0) cuts++;
    for (const pipe of pipes) {
      pipe.client.destroy();
      pipe.upstream.destroy();
    }
    pipes.clear();
  };

  /** Writes what is queued one way, unless stalled; a cut budget may end it mid-chunk. */
  const drain = (pipe: Pipe, toServer: boolean) => {
    if (Date.now() < stalledUntil) return;
    const queue = toServer ? pipe.queues.toServer : pipe.queues.toClient;
    const out = toServer ? pipe.upstream : pipe.client;
    while (queue.length > 0 && pipes.has(pipe)) {
      let chunk = queue.shift()!;
      if (cutBudget && cutBudget.toServer === toServer) {
        if (chunk.length >= cutBudget.bytes) {
          chunk = chunk.subarray(0, cutBudget.bytes);
          cutBudget = undefined;
          if (chunk.length > 0) out.write(chunk);
          setImmediate(cutAll);
          return;
        }
        cutBudget.bytes -= chunk.length;
      }
      out.write(chunk);
    }
  };

  const forward = (pipe: Pipe, chunk: Buffer, toServer: boolean) => {
    (toServer ? pipe.queues.toServer : pipe.queues.toClient).push(chunk);
    if (Date.now() < delayUntil) later(() => drain(pipe, toServer), delayMs);
    else drain(pipe, toServer);
  };

  const server: Server = createServer((client) => {
    client.on('error', () => {});
    if (refusing || target === undefined) {
      client.destroy();
      return;
    }
    const upstream = connect(target, '127.0.0.1');
    upstream.on('error', () => {});
    const pipe: Pipe = { client, upstream, queues: { toServer: [], toClient: [] } };
    pipes.add(pipe);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pipes.delete(pipe);
    };
    client.on('data', (chunk: Buffer) => forward(pipe, chunk, true));
    upstream.on('data', (chunk: Buffer) => forward(pipe, chunk, false));
    client.on('close', drop);
    upstream.on('close', drop);
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no port');
  let closed: Promise<void> | undefined;

  return {
    port: address.port,
    get cuts() {
      return cuts;
    },
    cutAll,
    cutAfter(bytes, toServer) {
      cutBudget = { bytes: Math.max(0, bytes), toServer };
    },
    stall(ms) {
      stalledUntil = Math.max(stalledUntil, Date.now() + ms);
      later(() => {
        for (const pipe of pipes) {
          drain(pipe, true);
          drain(pipe, false);
        }
      }, ms + 1);
    },
    delay(ms, forMs) {
      delayMs = ms;
      delayUntil = Date.now() + forMs;
    },
    setRefusing(value) {
      refusing = value;
      if (value) cutAll();
    },
    heal() {
      stalledUntil = 0;
      delayUntil = 0;
      cutBudget = undefined;
      refusing = false;
      for (const pipe of pipes) {
        drain(pipe, true);
        drain(pipe, false);
      }
    },
    retarget(port) {
      target = port;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        cutAll();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}
