import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

// What a browser cannot load: Node's built-in modules and the Node-only drivers.
const nodeOnly = new Set(['ws', 'pg', 'better-sqlite3', '@electric-sql/pglite']);
const isNodeImport = (path: string) =>
  path.startsWith('node:') ||
  builtinModules.includes(path) ||
  builtinModules.includes(path.split('/')[0]!) ||
  nodeOnly.has(path);

/** Records every import of a Node module, with the file that made it, instead of resolving it. */
function recordNodeImports(found: string[]): Plugin {
  return {
    name: 'record-node-imports',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter: /.*/ }, (args) => {
        if (!isNodeImport(args.path)) return undefined;
        found.push(`${args.path} (imported by ${args.importer.replace(root, '')})`);
        return { path: args.path, external: true };
      });
    },
  };
}

it.each([
  ['syncline', 'dist/index.js'],
  ['syncline/sync', 'dist/sync/client/index.js'],
  ['syncline/react', 'dist/react/index.js'],
  ['syncline/sqlite-wasm', 'dist/drivers/sqlite-wasm/index.js'],
  ['the sqlite-wasm worker', 'dist/drivers/sqlite-wasm/worker.js'],
])('%s bundles for the browser with no Node import', async (_entry, file) => {
  const found: string[] = [];
  const result = await build({
    entryPoints: [`${root}/${file}`],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    logLevel: 'silent',
    // The WASM binary is fetched at run time, next to the library's module.
    loader: { '.wasm': 'file' },
    outdir: `${root}/.bundle-check`,
    plugins: [recordNodeImports(found)],
  });
  expect(found).toEqual([]);
  expect(result.errors).toEqual([]);
  expect(result.outputFiles.some((f) => f.path.endsWith('.js') && f.text.length > 1000)).toBe(true);
});

it('the check itself catches a Node import', async () => {
  const found: string[] = [];
  await build({
    stdin: {
      contents: "import { readFileSync } from 'node:fs'; console.log(readFileSync);",
      resolveDir: root,
    },
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    logLevel: 'silent',
    plugins: [recordNodeImports(found)],
  });
  expect(found).toEqual(['node:fs (imported by <stdin>)']);
});
