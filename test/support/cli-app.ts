import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The project's root folder. */
export const root = fileURLToPath(new URL('../..', import.meta.url));

/** The CLI's source entry, run with tsx's loader (`process.execPath --import tsxLoader cliSource`). */
export const cliSource = join(root, 'src/cli/main.ts');
/** tsx's ESM loader, for `node --import`. */
export const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
/** syncline's source entry as a file URL, for the app modules a test writes to import. */
export const synclineModule = pathToFileURL(join(root, 'src/index.ts')).href;

/**
 * An app folder of its own in the system's temp dir (an ES module package), as `npx syncline`
 * would find it, with `cli()` to run the CLI from source there and `remove()` to delete it.
 *
 * @example
 *   const app = cliApp('syncline-cli-');
 *   afterAll(app.remove);
 *   expect(app.cli('migrate', '--schema', 'schema.ts', '--database', 'data').code).toBe(0);
 */
export function cliApp(prefix: string): {
  readonly dir: string;
  cli(...args: string[]): { code: number | null; stdout: string; stderr: string };
  remove(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  return {
    dir,
    cli(...args) {
      const result = spawnSync(process.execPath, ['--import', tsxLoader, cliSource, ...args], {
        cwd: dir,
        encoding: 'utf8',
      });
      return { code: result.status, stdout: result.stdout, stderr: result.stderr };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
