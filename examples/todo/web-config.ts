import { fileURLToPath } from 'node:url';
import type { InlineConfig } from 'vite';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const source = (path: string) => fileURLToPath(new URL(`../../src/${path}`, import.meta.url));

/**
 * The Vite config of the todo page (examples/todo/web), served from the repository's source with
 * no build step: `syncline`, `syncline/sync`, `syncline/sqlite-wasm` and `syncline/react` point at the src/ entry
 * files, so code written against the package names runs here as is. SQLite WASM is left out of
 * Vite's dependency bundling (it loads its .wasm file next to itself) and its worker is an ES module.
 * The page is React in .tsx files, which Vite compiles itself (no plugin).
 * HMR is off: the page is served through another server's middleware, and reloading is enough.
 *
 * @example
 *   const vite = await createServer({ ...todoWebConfig(), server: { middlewareMode: true, hmr: false } });
 */
export function todoWebConfig(): InlineConfig {
  return {
    configFile: false,
    root: fileURLToPath(new URL('./web/', import.meta.url)),
    appType: 'spa',
    logLevel: (process.env.TODO_VITE_LOG as 'info' | undefined) ?? 'warn',
    resolve: {
      alias: [
        { find: /^syncline$/, replacement: source('index.ts') },
        { find: /^syncline\/sync$/, replacement: source('sync/client/index.ts') },
        { find: /^syncline\/sqlite-wasm$/, replacement: source('drivers/sqlite-wasm/index.ts') },
        { find: /^syncline\/react$/, replacement: source('react/index.ts') },
      ],
    },
    // The page's bare dependencies Vite bundles (zod, and React with its JSX runtime): named here,
    // they are ready before the first page load, so no late discovery reloads an open page.
    optimizeDeps: {
      exclude: ['@sqlite.org/sqlite-wasm'],
      include: ['zod', 'react', 'react-dom/client', 'react/jsx-dev-runtime'],
    },
    // The page is .tsx: Vite's own transform compiles its JSX for React's automatic runtime (no
    // plugin; without React Refresh, a change to a file reloads the page).
    oxc: { jsx: { runtime: 'automatic' } },
    worker: { format: 'es' },
    server: { fs: { allow: [repoRoot] } },
  };
}
