import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliApp, root, tsxLoader } from '../support/cli-app.js';

/**
 * Every TypeScript block of README.md compiles and runs as written, against the built package.
 *
 * The README's convention, which this test enforces: each ```ts block starts with a comment that
 * names its file (`// schema.ts: imported by the client and by the server`). A block naming a file
 * an earlier block named continues that file. The files are written into an app folder of their
 * own, whose `node_modules/syncline` links to this repository (its export map points into `dist/`,
 * which `npm test` builds first), beside the packages the README tells an app to install for its
 * own imports (`jose`, and `@types/node` for TypeScript). All files are type-checked together with
 * the compiler options of tsconfig.json. A file whose first comment says "a whole program" is then
 * run with node and tsx, in README order, in that folder: on SQLite and PGlite (DATABASE_URL is
 * left out), a secret in JWT_SECRET and a free loopback port in PORT. A program listed in SERVERS
 * keeps serving: it must print its ready line, stay up while the programs after it run (a client
 * syncs with it), and exit with 0 on SIGTERM. Every `npx syncline ...` line of a sh block names a
 * command of the built CLI, with options that command lists in its help.
 */

const README = join(root, 'README.md');

/** Programs that serve until stopped, and the line each prints once it accepts connections. */
const SERVERS: ReadonlyMap<string, RegExp> = new Map([['server.ts', /^listening on ws:\/\//m]]);

/** How long one program may take, and a server to start or to stop. */
const PROGRAM_MS = 60_000;

/** The packages an app installs for its own imports in the README's blocks (see its Install section). */
const APP_PACKAGES = ['jose', 'zod', '@types/node'];

interface ReadmeFile {
  readonly name: string;
  text: string;
  /** The README line of each line of `text`, for error messages. */
  readonly lines: number[];
  readonly program: boolean;
}

/** The README's ts blocks gathered into files by the comment each starts with. */
function readmeFiles(markdown: string): ReadmeFile[] {
  const files = new Map<string, ReadmeFile>();
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    const head = /^\/\/ ([\w.-]+\.ts)\b(.*)$/.exec(lines[start] ?? '');
    if (!head) {
      throw new Error(
        `README.md line ${start + 1}: a ts block must start with a comment naming its file, such as "// tour.ts, a whole program"; it starts with ${JSON.stringify(lines[start])}`,
      );
    }
    const [, name, rest] = head as unknown as [string, string, string];
    let file = files.get(name);
    if (!file) {
      file = { name, text: '', lines: [], program: rest.includes('a whole program') };
      files.set(name, file);
    }
    for (let line = start; line < end; line++) {
      file.text += `${lines[line]}\n`;
      file.lines.push(line + 1);
    }
    i = end;
  }
  return [...files.values()];
}

/** The diagnostics of type-checking `files` (in `dir`) as tsconfig.json would, placed in README.md. */
function typeCheck(dir: string, files: readonly ReadmeFile[]): string[] {
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile);
  // An app emits no declarations: with them, TypeScript cannot name a table's inferred type
  // through the package's export map (TS2742) and asks for annotations a README would not show.
  const compilerOptions = { ...config.config.compilerOptions, declaration: false, sourceMap: false };
  const { options, errors } = ts.parseJsonConfigFileContent(
    { compilerOptions, files: files.map((f) => f.name) },
    ts.sys,
    dir,
  );
  if (errors.length > 0) return errors.map((e) => ts.flattenDiagnosticMessageText(e.messageText, '\n'));
  const program = ts.createProgram({ rootNames: files.map((f) => join(dir, f.name)), options });
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const source = diagnostic.file;
    if (!source || diagnostic.start === undefined) return `error TS${diagnostic.code}: ${message}`;
    const { line } = source.getLineAndCharacterOfPosition(diagnostic.start);
    const file = files.find((f) => join(dir, f.name) === source.fileName);
    const where = file ? `README.md:${file.lines[line]} (${file.name})` : `${source.fileName}:${line + 1}`;
    return `${where}: error TS${diagnostic.code}: ${message}`;
  });
}

/** The `npx syncline ...` lines of the README's sh blocks: the command's words, and its options. */
function cliLines(markdown: string): { line: string; command: string[]; options: string[] }[] {
  const found: { line: string; command: string[]; options: string[] }[] = [];
  let inShell = false;
  for (const line of markdown.split('\n')) {
    if (line.trim().startsWith('```')) inShell = !inShell && line.trim() === '```sh';
    const call = inShell ? /^npx syncline (.*)$/.exec(line.replace(/\s+#.*$/, '')) : null;
    if (!call) continue;
    const words = call[1]!.split(/\s+/);
    const firstOption = words.findIndex((word) => word.startsWith('-'));
    const command = firstOption < 0 ? words : words.slice(0, firstOption);
    found.push({ line, command, options: words.filter((word) => /^--?[a-z]/.test(word)) });
  }
  return found;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A program of the README running in the app folder, with its output so far. */
class Run {
  readonly child: ChildProcess;
  output = '';
  readonly exit: Promise<number | null>;

  constructor(dir: string, file: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, ['--import', tsxLoader, file], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (chunk) => (this.output += chunk));
    this.child.stderr!.on('data', (chunk) => (this.output += chunk));
    // A program ended by a signal has no exit code: it counts as failed, and says which signal.
    this.exit = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        if (signal) this.output += `\n(ended by ${signal})`;
        resolve(code);
      }),
    );
  }

  /** Resolves when `pattern` shows in the output; rejects when the program ends or takes too long. */
  async printed(pattern: RegExp, what: string): Promise<void> {
    const deadline = Date.now() + PROGRAM_MS;
    while (!pattern.test(this.output)) {
      if (this.child.exitCode !== null)
        throw new Error(`${what} exited with ${this.child.exitCode}:\n${this.output}`);
      if (Date.now() > deadline)
        throw new Error(`${what} did not print ${pattern} in ${PROGRAM_MS} ms:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The exit code, or an error when the program is still running after `PROGRAM_MS`. */
  async ended(what: string): Promise<number | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`${what} was still running after ${PROGRAM_MS} ms:\n${this.output}`));
      }, PROGRAM_MS);
    });
    try {
      return await Promise.race([this.exit, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

describe('README.md examples', () => {
  const app = cliApp('syncline-readme-');
  const files = readmeFiles(readFileSync(README, 'utf8'));
  const running: Run[] = [];

  beforeAll(() => {
    // The package resolves through its export map, into dist/: made by `npm run build`, which
    // `npm test` runs first.
    const exports = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).exports as Record<
      string,
      { types: string; import: string }
    >;
    const missing = Object.values(exports)
      .flatMap((entry) => [entry.types, entry.import])
      .filter((path) => !existsSync(join(root, path)));
    if (missing.length > 0) {
      throw new Error(
        `the built package is missing (${missing.slice(0, 3).join(', ')}...): run \`npm run build\` first (npm test does)`,
      );
    }
    mkdirSync(join(app.dir, 'node_modules/@types'), { recursive: true });
    symlinkSync(root, join(app.dir, 'node_modules/syncline'), 'dir');
    for (const name of APP_PACKAGES) {
      symlinkSync(join(root, 'node_modules', name), join(app.dir, 'node_modules', name), 'dir');
    }
    for (const file of files) writeFileSync(join(app.dir, file.name), file.text);
  });

  afterAll(async () => {
    for (const run of running) if (run.child.exitCode === null) run.child.kill('SIGKILL');
    await Promise.all(running.map((run) => run.exit));
    app.remove();
  });

  it('has ts blocks, the programs among them', () => {
    expect(files.map((f) => f.name)).toContain('schema.ts');
    expect(files.filter((f) => f.program).length).toBeGreaterThan(0);
    for (const name of SERVERS.keys()) expect(files.find((f) => f.name === name)?.program, name).toBe(true);
  });

  it('shows only commands and options the CLI has', () => {
    const lines = cliLines(readFileSync(README, 'utf8'));
    expect(lines.map((l) => l.command.join(' '))).toEqual(expect.arrayContaining(['serve', 'migrate']));
    for (const { line, command, options } of lines) {
      const help = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...command, '--help'], {
        cwd: app.dir,
        encoding: 'utf8',
      });
      expect(help.status, `${line}\n${help.stderr}`).toBe(0);
      for (const option of options) expect(help.stdout, `${line}: ${option}`).toContain(option);
    }
  });

  it('type-checks every block against the built package', () => {
    expect(typeCheck(app.dir, files)).toEqual([]);
  }, 120_000);

  it('runs every whole program, servers stopping cleanly on SIGTERM', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      JWT_SECRET: 'readme-examples-secret-of-32-bytes-and-more',
      PORT: String(await freePort()),
    };
    // The programs use PGlite without it, and must not touch a shared PostgreSQL.
    delete env.DATABASE_URL;
    delete env.SYNCLINE_LOG_LEVEL;
    const servers: [string, Run][] = [];
    for (const file of files.filter((f) => f.program)) {
      const run = new Run(app.dir, file.name, env);
      running.push(run);
      const ready = SERVERS.get(file.name);
      if (ready) {
        await run.printed(ready, file.name);
        servers.push([file.name, run]);
        continue;
      }
      const code = await run.ended(file.name);
      expect(code, `${file.name} exited with ${code}:\n${run.output}`).toBe(0);
    }
    for (const [name, run] of servers) {
      expect(run.child.exitCode, `${name} ended before it was stopped:\n${run.output}`).toBe(null);
      run.child.kill('SIGTERM');
      const code = await run.ended(`${name} after SIGTERM`);
      expect(code, `${name} exited with ${code} on SIGTERM:\n${run.output}`).toBe(0);
    }
  }, 300_000);
});
