import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits until `predicate` holds, checking every few milliseconds, and fails with `what` once
 * `timeoutMs` has passed. Tests wait for an outcome this way instead of sleeping a fixed time:
 * fast when the outcome comes at once, bounded when it never does.
 *
 * @example
 *   await waitFor(() => seen.length === 2, 2000, 'the second emission');
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = 'the condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} did not happen within ${timeoutMs} ms`);
    await sleep(2);
  }
}
