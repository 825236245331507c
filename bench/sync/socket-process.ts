/**
 * The parent's handle on a `socket-clients.ts` child process: start it with N sockets on a table,
 * wait until they are live, tell it how many changes to expect and wait until every socket has
 * them, and close it. Waits are bounded (child-bench.ts).
 */
import { BenchChild } from './child-bench.js';
import { formatCount } from './outcome.js';

/**
 * A running child process of raw socket clients.
 *
 * @example
 *   const sockets = await SocketProcess.start(bench.url, 1000, 'counters');
 *   try { ... } finally { await sockets.close(); }
 */
export class SocketProcess {
  private constructor(
    private readonly child: BenchChild,
    /** How many sockets are live. */
    readonly sockets: number,
  ) {}

  /** Forks the child and waits until its sockets are live. */
  static async start(url: string, count: number, table: string, timeoutMs = 180_000): Promise<SocketProcess> {
    const child = BenchChild.fork('./socket-clients.ts', [url, String(count), table], 'socket clients');
    try {
      const ready = await child.ask(
        undefined,
        (m) => m.ready as number | undefined,
        timeoutMs,
        `${formatCount(count)} sockets to go live`,
      );
      return new SocketProcess(child, ready);
    } catch (error) {
      child.kill();
      throw error;
    }
  }

  /** Resolves once every socket has received `changes` changes of its table. */
  async expect(changes: number, timeoutMs: number): Promise<void> {
    await this.child.ask(
      { expect: changes },
      (m) => m.done as boolean | undefined,
      timeoutMs,
      `${formatCount(this.sockets)} sockets to receive ${formatCount(changes)} changes`,
    );
  }

  /** Closes every socket and waits for the process to exit. */
  close(): Promise<void> {
    return this.child.close();
  }
}
