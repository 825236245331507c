import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { cliSource, tsxLoader } from './cli-app.js';

/**
 * `syncline serve` as a process of its own (the CLI from source, through tsx), as it is deployed:
 * started with its flags in an app folder, ready once it prints the line with its URL, stopped
 * with a real signal. Its stderr (JSON log lines) is kept for a failure report.
 *
 * @example
 *   const served = await startServeProcess(app.dir, ['--schema', 'schema.ts', '--database', url, '--port', '0']);
 *   served.kill('SIGKILL');
 *   await served.exited;
 */
export interface ServeProcess {
  readonly child: ChildProcess;
  /** The URL it printed (`ws://127.0.0.1:<port>/sync`). */
  readonly url: string;
  /** Resolves with the exit code, or the signal that ended it. */
  readonly exited: Promise<number | string>;
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** Sends `signal` (SIGTERM by default) and waits until the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts `syncline serve <args>` in `cwd` and resolves once it listens; fails with its stderr if
 * it exits first or is not listening within `timeoutMs`.
 *
 * @example
 *   const served = await startServeProcess(dir, ['--schema', 'schema.ts', '--database', url, '--port', '4001']);
 */
export async function startServeProcess(
  cwd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 30_000,
): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['--import', tsxLoader, cliSource, 'serve', ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code ?? -1)),
  );
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  const lines = createInterface({ input: child.stdout! });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        const match = /^syncline: sync server listening on (ws:\/\/\S+)$/.exec(line);
        if (match) resolve(match[1]!);
      });
      void exited.then((how) =>
        reject(new Error(`syncline serve exited (${how}) before listening: ${stderr}`)),
      );
      timer = setTimeout(
        () => reject(new Error(`syncline serve was not listening within ${timeoutMs} ms: ${stderr}`)),
        timeoutMs,
      );
    });
    return { child, url, exited, stderr: () => stderr, stop };
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
