import { LOGICAL_URL_VARIABLE, logicalClusterPossible, startLogicalCluster } from './logical-cluster.js';
import { requireAll, skippedSuites } from './requirements.js';

/**
 * Runs once around the whole test run (vitest's globalSetup): fails the run at once when
 * SYNCLINE_TEST_ALL=1 requires suites this machine cannot run, and otherwise says at the end, in
 * one line, which suites were skipped and how to run them. Projects inherit the setup, so the line
 * is printed by the first teardown only.
 *
 * @example
 *   // vitest.config.ts: test: { globalSetup: ['test/support/global-setup.ts'] }
 */
export default async function setup(): Promise<() => Promise<void>> {
  const line = skippedSuites();
  // One PostgreSQL cluster with wal_level = logical for the whole run (about a second to start),
  // for the logical-capture suites; the workers find it through SYNCLINE_LOGICAL_URL.
  let stopCluster: (() => Promise<void>) | undefined;
  if (!process.env[LOGICAL_URL_VARIABLE] && (logicalClusterPossible || requireAll)) {
    const cluster = await startLogicalCluster();
    process.env[LOGICAL_URL_VARIABLE] = cluster.url;
    stopCluster = () => cluster.stop();
  }
  return async () => {
    await stopCluster?.();
    if (!line || process.env.SYNCLINE_SKIPPED_SHOWN) return;
    process.env.SYNCLINE_SKIPPED_SHOWN = '1';
    console.log(`\n${line}`);
  };
}
