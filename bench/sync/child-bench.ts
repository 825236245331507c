/**
 * The parent's handle on a bench child process (socket-clients.ts, sync-clients.ts): forks it
 * (tsx's loader is inherited through execArgv), sends it messages and waits for the reply that
 * answers each, and closes it (the process is killed if it does not exit in time). Every wait is
 * bounded, and a child's `{ failed }` fails whatever waits.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { within } from '../support/bounded-wait.js';

/** What a child sends: a reply, or `{ failed }` with the reason. */
export type ChildMessage = { readonly failed?: string } & Record<string, unknown>;

/**
 * A running bench child process.
 *
 * @example
 *   const child = BenchChild.fork('./sync-clients.ts', [bench.url]);
 *   const total = await child.ask({ grow: 100 }, (m) => m.ready as number | undefined, 180_000, '100 clients');
 *   await child.close();
 */
export class BenchChild {
  private failure: Error | undefined;
  private readonly listeners = new Set<(message: ChildMessage) => void>();
  private readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    name: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.on('message', (message: ChildMessage) => {
      if (message.failed) this.failure ??= new Error(`bench: the ${name} failed: ${message.failed}`);
      for (const listener of this.listeners) listener(message);
    });
    void this.exited.then((code) => {
      this.failure ??= new Error(`bench: the ${name} process exited with code ${code}`);
      for (const listener of this.listeners) listener({ failed: 'exited' });
    });
  }

  /** Forks `script` (relative to this folder) with `args`; `name` says what it holds, for errors. */
  static fork(script: string, args: readonly string[], name: string): BenchChild {
    const child = fork(fileURLToPath(new URL(script, import.meta.url)), [...args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new BenchChild(child, name);
  }

  /**
   * Sends `message` (when given) and resolves with the first reply `answer` maps to a value (it
   * returns undefined for other messages); rejects when the child fails or `timeoutMs` passes.
   */
  ask<T>(
    message: object | undefined,
    answer: (message: ChildMessage) => T | undefined,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    const reply = new Promise<T>((resolve, reject) => {
      const listener = (received: ChildMessage) => {
        if (received.failed) {
          this.listeners.delete(listener);
          reject(this.failure);
          return;
        }
        const value = answer(received);
        if (value === undefined) return;
        this.listeners.delete(listener);
        resolve(value);
      };
      if (this.failure) reject(this.failure);
      else this.listeners.add(listener);
    });
    if (message && this.child.connected) this.child.send(message);
    return within(reply, timeoutMs, what);
  }

  /** Asks the child to close and waits for it to exit (killing it after 5 s). */
  async close(): Promise<void> {
    if (this.child.connected) this.child.send({ close: true });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Kills the child at once (after a failed start). */
  kill(): void {
    this.child.kill('SIGKILL');
  }
}
