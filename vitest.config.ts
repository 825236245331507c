import { fileURLToPath } from 'node:url';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';
import { syncCommands } from './test/browser/sync-commands.js';
import { tabCommands } from './test/browser/tab-commands.js';
import { requireAll, requirements } from './test/support/requirements.js';

// The dialect suite's files that run in the browser too: the rest reach for Node (files, other
// drivers' error classes) and run in Node only.
const browserDialectFiles = [
  'insert',
  'select',
  'update-delete',
  'types',
  'transactions',
  'raw-and-prepared',
  'to-sql',
  'bulk-insert',
].map((name) => `test/dialect/${name}.test.ts`);

const chromiumFlags = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// The dialect suite's browser half and the browser tests, in Chromium.
const browserProject: TestProjectInlineConfiguration = {
  extends: true,
  // The dialect files import '../support/drivers.js' (Node's drivers); here it is the browser's.
  resolve: {
    alias: [
      {
        find: /^\.\.\/support\/drivers\.js$/,
        replacement: fileURLToPath(new URL('./test/browser/browser-drivers.ts', import.meta.url)),
      },
    ],
  },
  // Listed up front so Vite does not find and optimize them mid-run (which reloads the page).
  optimizeDeps: { exclude: ['@sqlite.org/sqlite-wasm'], include: ['zod'] },
  worker: { format: 'es' },
  test: {
    name: 'browser',
    // A page, its worker and a sync server share two cores with the Node suites: on a loaded
    // machine a browser sync test has taken over 30 s where it takes 3.
    testTimeout: 60_000,
    include: ['test/browser/**/*.test.ts', 'test/browser/**/*.test.tsx', ...browserDialectFiles],
    browser: {
      enabled: true,
      headless: true,
      provider: playwright({
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: chromiumFlags,
        },
      }),
      instances: [{ browser: 'chromium' }],
      screenshotFailures: false,
      // A sync server in this Node process, for the page to sync with (sync-in-browser.test.ts).
      commands: { ...syncCommands, ...tabCommands },
    },
  },
};

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    typecheck: { enabled: false },
    // Says which suites this machine cannot run (or fails the run under SYNCLINE_TEST_ALL=1).
    globalSetup: ['test/support/global-setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/browser/**'],
          pool: 'forks',
        },
      },
      // Without a Chromium the browser project is left out (the global setup says so).
      ...(requirements.chromium.present || requireAll ? [browserProject] : []),
    ],
  },
});
