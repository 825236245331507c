/**
 * The running parts of one soak run: the server process on the run's database, one fault proxy
 * per client, and the client processes on their SQLite files. It starts, kills and restarts them
 * (a restarted server may listen on another port: the proxies are pointed at it), and routes what
 * the children report into the run's history.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChildEvent, SoakChild } from './child.js';
import type { Deployment } from './deployment.js';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';
import type { History } from './history.js';
import type { SoakSchema } from './schema.js';
import { soakToken } from './tokens.js';
import type { LoggedChange } from './writes.js';

/** libfaketime, when installed (Debian's `libfaketime`): how a client process gets a skewed clock. */
const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

/**
 * True when client clocks can be skewed here (libfaketime is installed).
 *
 * @example
 *   if (!canSkewClocks()) console.log('skew faults are skipped');
 */
export function canSkewClocks(): boolean {
  return existsSync(FAKETIME_LIB);
}

/** Bounds of the cluster's waits. */
const SERVER_START_MS = 60_000;
const CLIENT_START_MS = 30_000;

/**
 * One client's place in the cluster: its file and proxy stay, its process comes and goes.
 *
 * @example
 *   const slot = cluster.clients[0];
 *   await slot.child?.call('write', step, 10_000);
 */
export interface ClientSlot {
  readonly index: number;
  readonly file: string;
  readonly proxy: FaultProxy;
  child: SoakChild | undefined;
  /** Resolves once the process is up and started (after a kill or a skew restart). */
  ready: Promise<void>;
  /** The offset of its clock, 0 for none. */
  skewMs: number;
  /** Processes this slot ran so far (a kill or a skew restart makes a new one). */
  incarnation: number;
}

function waitForEvent(
  child: SoakChild,
  name: string,
  ms: number,
  route: (e: ChildEvent) => void,
): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${child.name}: no "${name}" within ${ms} ms`)), ms);
    child.onEvent = (event) => {
      if (event.event === name) {
        clearTimeout(timer);
        resolve(event.data);
      }
      route(event);
    };
    void child.exited.then((how) => {
      clearTimeout(timer);
      reject(
        new Error(`${child.name} exited (${how}) before "${name}"; stderr:\n${child.stderr.join('\n')}`),
      );
    });
  });
}

/**
 * The server, proxies and clients of one run.
 *
 * @example
 *   const cluster = await Cluster.start(s, deployment, history, 5);
 *   try { ... } finally { await cluster.close(); }
 */
export class Cluster {
  server: SoakChild | undefined;
  serverPort = 0;
  /** The heap of the current server process just after it started (after a gc). */
  serverStartHeap = 0;
  /** Server processes so far. */
  serverIncarnation = 0;
  readonly clients: ClientSlot[] = [];
  /** The server's log lines at level error, and its stderr when it died unexpectedly. */
  readonly serverErrors: string[] = [];

  private constructor(
    private readonly s: SoakSchema,
    readonly deployment: Deployment,
    private readonly history: History,
    private readonly dir: string,
  ) {}

  /** Starts the server, `clients` proxies and client processes (started, not yet caught up). */
  static async start(
    s: SoakSchema,
    deployment: Deployment,
    history: History,
    clients: number,
  ): Promise<Cluster> {
    const cluster = new Cluster(
      s,
      deployment,
      history,
      mkdtempSync(join(tmpdir(), 'syncline-soak-clients-')),
    );
    try {
      await cluster.startServer();
      for (let i = 0; i < clients; i++) {
        const proxy = await startFaultProxy(cluster.serverPort);
        const slot: ClientSlot = {
          index: i,
          file: join(cluster.dir, `client-${i}.db`),
          proxy,
          child: undefined,
          ready: Promise.resolve(),
          skewMs: 0,
          incarnation: 0,
        };
        cluster.clients.push(slot);
      }
      await Promise.all(cluster.clients.map((slot) => cluster.spawnClient(slot)));
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  private routeServer = (event: ChildEvent) => {
    if (event.event === 'mutation') {
      const data = event.data as { clientId: string; mutationId: number; changes: LoggedChange[] };
      this.history.mutationRan(data.clientId, data.mutationId, data.changes);
    }
    if (event.event === 'unhandled') {
      this.history.unhandled.push({
        who: 'server',
        message: `${(event.data as any).kind}: ${(event.data as any).message}`,
      });
    }
  };

  /** Starts a server process on the run's database and points every proxy at it. */
  async startServer(): Promise<void> {
    const n = ++this.serverIncarnation;
    const child = SoakChild.fork('./server-process.ts', [this.s.variant, ...this.deployment.serverArgs], {
      name: `server #${n}`,
    });
    this.server = child;
    const { port } = await waitForEvent(child, 'listening', SERVER_START_MS, this.routeServer);
    this.serverPort = port;
    for (const slot of this.clients) slot.proxy.retarget(port);
    this.serverStartHeap = await child.call<number>('heap', undefined, 10_000);
    void child.exited.then(() => {
      for (const line of child.stderr) if (line.includes('"level":"error"')) this.serverErrors.push(line);
    });
  }

  /** SIGKILLs the server process (its connections drop; the proxies stay). */
  async killServer(): Promise<void> {
    const child = this.server;
    this.server = undefined;
    for (const slot of this.clients) slot.proxy.retarget(undefined);
    await child?.kill('SIGKILL');
  }

  private routeClient(slot: ClientSlot) {
    return (event: ChildEvent) => {
      const data = event.data as any;
      switch (event.event) {
        case 'push':
          this.history.pushed(slot.index, data);
          break;
        case 'ack':
          this.history.acked(data);
          break;
        case 'rejected':
          this.history.rejections.push({
            client: slot.index,
            mutationId: data.mutationId,
            reason: data.reason,
          });
          break;
        case 'error':
          this.history.errors.push({ who: `client ${slot.index}`, message: data.message });
          break;
        case 'unhandled':
          this.history.unhandled.push({
            who: `client ${slot.index}`,
            message: `${data.kind}: ${data.message}`,
          });
          break;
      }
    };
  }

  /** Starts a client process on the slot's file (with its clock skew) and its sync client. */
  spawnClient(slot: ClientSlot): Promise<void> {
    const n = ++slot.incarnation;
    const env: Record<string, string> =
      slot.skewMs !== 0 && canSkewClocks()
        ? {
            LD_PRELOAD: FAKETIME_LIB,
            FAKETIME: `${slot.skewMs > 0 ? '+' : '-'}${Math.abs(slot.skewMs) / 1000}s`,
            DONT_FAKE_MONOTONIC: '1',
          }
        : {};
    slot.ready = (async () => {
      const token = await soakToken(`user-${slot.index}`);
      const child = SoakChild.fork(
        './client-process.ts',
        [this.s.variant, slot.file, `ws://127.0.0.1:${slot.proxy.port}/sync`, token],
        { name: `client ${slot.index} #${n}`, env },
      );
      slot.child = child;
      await waitForEvent(child, 'ready', CLIENT_START_MS, this.routeClient(slot));
      await child.call('start', undefined, CLIENT_START_MS);
    })();
    return slot.ready;
  }

  /** SIGKILLs a client process; `spawnClient` brings it back on the same file. */
  async killClient(slot: ClientSlot): Promise<void> {
    const child = slot.child;
    slot.child = undefined;
    await child?.kill('SIGKILL');
  }

  /** Kills every process, closes the proxies, removes the client files. Safe to call twice. */
  async close(): Promise<void> {
    await Promise.allSettled(this.clients.map((slot) => this.killClient(slot)));
    if (this.server?.running) {
      await this.server.call('close', undefined, 5000).catch(() => {});
    }
    await this.killServer();
    await Promise.allSettled(this.clients.map((slot) => slot.proxy.close()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
