import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits for `work`, but at most `ms`: past that it rejects with a message naming `what` and the
 * limit, so a benchmark that stalls fails with a reason instead of hanging. The timer is cleared
 * either way, so nothing keeps the process alive.
 *
 * @example
 *   await within(sync.caughtUp(), 30_000, 'client 3 to catch up');
 */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`bench: ${what} did not happen within ${(ms / 1000).toFixed(0)} s`)),
      ms,
    );
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `predicate` every `everyMs` until it holds; fails after `ms` with a message naming `what`.
 * For outcomes that announce themselves with no event (a server's connection count).
 *
 * @example
 *   await until(() => server.connections === 1000, 60_000, '1,000 connections to open');
 */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
  everyMs = 5,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline)
      throw new Error(`bench: ${what} did not happen within ${(ms / 1000).toFixed(0)} s`);
    await sleep(everyMs);
  }
}
