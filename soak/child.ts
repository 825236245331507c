/**
 * The parent's handle on a soak child process (a client or the server): forked with tsx's loader
 * and structured-clone IPC (bigint, Date and Uint8Array cross as they are), asked to do things
 * with `call` (every call bounded by a timeout), listened to with `onEvent`, killed with a
 * signal. Every child ever forked is killed when the harness exits or is interrupted.
 */
import { createHook } from 'node:async_hooks';
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * A message a child sends on its own: `{ event, data }`.
 *
 * @example
 *   child.onEvent = (e: ChildEvent) => { if (e.event === 'push') history.pushed(0, e.data as any); };
 */
export interface ChildEvent {
  readonly event: string;
  readonly data: unknown;
}

const alive = new Set<ChildProcess>();
let hooked = false;

/**
 * Kills every child still running (SIGKILL): on exit, and on SIGINT/SIGTERM of the harness.
 *
 * @example
 *   process.on('exit', killAllChildren);
 */
export function killAllChildren(): void {
  for (const child of alive) child.kill('SIGKILL');
  alive.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllChildren);
}

/**
 * A running child process.
 *
 * @example
 *   const child = SoakChild.fork('./client-process.ts', ['--db', file], { name: 'client 0' });
 *   child.onEvent = (e) => history.record(e);
 *   await child.call('write', step, 10_000);
 *   child.kill();
 */
export class SoakChild {
  /** Events the child sends (pushes seen, acks, errors, unhandled rejections). */
  onEvent: ((event: ChildEvent) => void) | undefined;
  /** The last lines the child wrote to stderr (for a failure report). */
  readonly stderr: string[] = [];
  /** Resolves with the exit code (or signal) once the process ended. */
  readonly exited: Promise<string>;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private ended: string | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly name: string,
  ) {
    alive.add(child);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        alive.delete(child);
        this.ended = signal ?? `code ${code}`;
        for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (${this.ended})`));
        this.waiting.clear();
        resolve(this.ended);
      }),
    );
    child.on('error', () => {});
    child.on('message', (message: any) => {
      if (message && typeof message.id === 'number') {
        const waiter = this.waiting.get(message.id);
        this.waiting.delete(message.id);
        if (!waiter) return;
        if (message.error !== undefined) waiter.reject(new Error(`${name}: ${message.error}`));
        else waiter.resolve(message.value);
      } else if (message && typeof message.event === 'string') {
        this.onEvent?.(message as ChildEvent);
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        this.stderr.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
        if (this.stderr.length > 60) this.stderr.shift();
      }
    });
  }

  /**
   * Forks `script` (relative to this folder) with `args`. `env` is added to the parent's
   * environment (libfaketime for a skewed clock).
   */
  static fork(
    script: string,
    args: readonly string[],
    options: { name: string; env?: Record<string, string> },
  ) {
    hookExit();
    const child = fork(fileURLToPath(new URL(script, import.meta.url)), [...args], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, ...options.env },
    });
    return new SoakChild(child, options.name);
  }

  /** The process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True until the process exited. */
  get running(): boolean {
    return this.ended === undefined;
  }

  /** Asks the child to run `method` with `arg`; rejects on its error, its exit, or after `timeoutMs`. */
  call<T = unknown>(method: string, arg: unknown, timeoutMs: number): Promise<T> {
    if (this.ended !== undefined)
      return Promise.reject(new Error(`${this.name} is not running (${this.ended})`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: ${method} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      try {
        this.child.send({ id, method, arg });
      } catch (error) {
        this.waiting.delete(id);
        clearTimeout(timer);
        reject(error as Error);
      }
    });
  }

  /** Sends `signal` (SIGKILL by default) and waits for the exit, at most 10 s. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.ended !== undefined) return;
    this.child.kill(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    if (this.ended === undefined) this.child.kill('SIGKILL');
  }
}

/**
 * With SOAK_TRACE_PROMISES=1, remembers where each promise was made (an async hook; slow), so that
 * an unhandled rejection can say which code made the promise nobody handled.
 */
function traceRejections(): WeakMap<Promise<unknown>, string> | undefined {
  if (process.env.SOAK_TRACE_PROMISES !== '1') return undefined;
  const created = new WeakMap<Promise<unknown>, string>();
  createHook({
    init(_id, type, _trigger, resource) {
      if (type !== 'PROMISE') return;
      const stack = new Error('made here').stack?.split('\n').slice(2, 24).join('\n') ?? '';
      created.set(resource as Promise<unknown>, stack);
    },
  }).enable();
  return created;
}

/**
 * The child's side: answers the parent's calls with `handlers` and sends events; an unhandled
 * rejection or uncaught exception is reported as an `unhandled` event (and kept, for the
 * checker); the process exits when the parent goes away.
 *
 * @example
 *   serveParent({ write: (step) => apply(step), dump: () => dumpAll() });
 *   emit('push', frame);
 */
export function serveParent(handlers: Record<string, (arg: any) => unknown>): void {
  process.on('disconnect', () => process.exit(0));
  const created = traceRejections();
  process.on('unhandledRejection', (reason, promise) => {
    const where = created?.get(promise);
    const message = String((reason as Error)?.stack ?? reason);
    emit('unhandled', {
      kind: 'unhandledRejection',
      message: where ? `${message}\n    (the promise was made at:)\n${where}` : message,
    });
  });
  process.on('uncaughtException', (error) => {
    emit('unhandled', { kind: 'uncaughtException', message: String(error?.stack ?? error) });
  });
  process.on('message', async (message: any) => {
    if (!message || typeof message.id !== 'number') return;
    const handler = handlers[message.method];
    try {
      if (!handler) throw new Error(`no method ${message.method}`);
      const value = await handler(message.arg);
      process.send?.({ id: message.id, value });
    } catch (error) {
      process.send?.({ id: message.id, error: String((error as Error)?.message ?? error) });
    }
  });
}

/**
 * Sends an event to the parent (dropped when the channel is closed).
 *
 * @example
 *   emit('ack', { clientId, results });
 */
export function emit(event: string, data: unknown): void {
  if (process.connected) process.send?.({ event, data }, undefined, {}, () => {});
}
