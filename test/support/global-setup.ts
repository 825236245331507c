import { skippedSuites } from './requirements.js';

/**
 * Runs once around the whole test run (vitest's globalSetup): fails the run at once when
 * SYNCLINE_TEST_ALL=1 requires suites this machine cannot run, and otherwise says at the end, in
 * one line, which suites were skipped and how to run them. Projects inherit the setup, so the line
 * is printed by the first teardown only.
 *
 * @example
 *   // vitest.config.ts: test: { globalSetup: ['test/support/global-setup.ts'] }
 */
export default function setup(): () => void {
  const line = skippedSuites();
  return () => {
    if (!line || process.env.SYNCLINE_SKIPPED_SHOWN) return;
    process.env.SYNCLINE_SKIPPED_SHOWN = '1';
    console.log(`\n${line}`);
  };
}
