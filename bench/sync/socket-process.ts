/**
 * The parent's handle on a `socket-clients.ts` child process: start it with N sockets on a table,
 * wait until they are live, tell it how many changes to expect and wait until every socket has
 * them, and close it (the process is killed if it does not exit in time). Waits are bounded.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { within } from '../support/bounded-wait.js';
import { formatCount } from './outcome.js';

type ChildMessage = { ready?: number; done?: boolean; failed?: string };

/**
 * A running child process of raw socket clients.
 *
 * @example
 *   const sockets = await SocketProcess.start(bench.url, 1000, 'counters');
 *   try { ... } finally { await sockets.close(); }
 */
export class SocketProcess {
  private failure: Error | undefined;
  private readonly listeners = new Set<(message: ChildMessage) => void>();
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    /** How many sockets are live. */
    readonly sockets: number,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (message: ChildMessage) => {
      if (message.failed) this.failure ??= new Error(`bench: the socket clients failed: ${message.failed}`);
      for (const listener of this.listeners) listener(message);
    });
  }

  /** Forks the child (tsx's loader is inherited through execArgv) and waits until its sockets are live. */
  static async start(url: string, count: number, table: string, timeoutMs = 180_000): Promise<SocketProcess> {
    const child = fork(
      fileURLToPath(new URL('./socket-clients.ts', import.meta.url)),
      [url, String(count), table],
      {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    const ready = new Promise<number>((resolve, reject) => {
      child.on('message', (message: ChildMessage) => {
        if (message.failed) reject(new Error(`bench: the socket clients failed: ${message.failed}`));
        if (message.ready !== undefined) resolve(message.ready);
      });
      child.once('exit', (code) =>
        reject(new Error(`bench: the socket-client process exited with code ${code}`)),
      );
    });
    try {
      return new SocketProcess(
        child,
        await within(ready, timeoutMs, `${formatCount(count)} sockets to go live`),
      );
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** Resolves once every socket has received `changes` changes of its table. */
  expect(changes: number, timeoutMs: number): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      if (this.failure) reject(this.failure);
      const listener = (message: ChildMessage) => {
        if (message.failed) reject(this.failure);
        if (message.done) {
          this.listeners.delete(listener);
          resolve();
        }
      };
      this.listeners.add(listener);
    });
    this.child.send({ expect: changes });
    return within(
      done,
      timeoutMs,
      `${formatCount(this.sockets)} sockets to receive ${formatCount(changes)} changes`,
    );
  }

  /** Closes every socket and waits for the process to exit. */
  async close(): Promise<void> {
    if (this.child.connected) this.child.send({ close: true });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
