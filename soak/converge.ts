/**
 * Convergence once faults stopped: within a bound, every client is online, has every local write
 * acknowledged (`flush()`) and every server change applied (`caughtUp()`), and its tables equal
 * the server's. Returns how long that took, the dumps compared, and what did not happen in time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dump } from './check-replicas.js';
import { compareReplica } from './check-replicas.js';
import type { Cluster } from './cluster.js';
import type { SoakSchema } from './schema.js';
import type { Violation } from './violations.js';

/**
 * The outcome of `converge`.
 *
 * @example
 *   const { ms, violations } = await converge(cluster, s, 60_000);
 */
export interface Convergence {
  /** Time from the call until every replica equaled the server (undefined when they never did). */
  readonly ms: number | undefined;
  readonly server: Dump | undefined;
  readonly violations: readonly Violation[];
}

async function untilOnline(cluster: Cluster, deadline: number): Promise<string[]> {
  const late: string[] = [];
  for (const slot of cluster.clients) {
    let status = 'unknown';
    while (Date.now() < deadline) {
      status = await slot.child!.call<string>('status', undefined, 5000).catch(() => 'no answer');
      if (status === 'online') break;
      await sleep(100);
    }
    if (status !== 'online') late.push(`client ${slot.index} is ${status}`);
  }
  return late;
}

async function allOf(cluster: Cluster, method: string, deadline: number): Promise<string[]> {
  const failures = await Promise.all(
    cluster.clients.map((slot) =>
      slot
        .child!.call(method, undefined, Math.max(1, deadline - Date.now()))
        .then(() => undefined)
        .catch((error: Error) => `client ${slot.index}: ${method}() failed: ${error.message}`),
    ),
  );
  return failures.filter((f): f is string => f !== undefined);
}

/**
 * Waits for the cluster to converge (see the module comment), at most `timeoutMs`.
 *
 * @example
 *   const result = await converge(cluster, s, 60_000);
 */
export async function converge(cluster: Cluster, s: SoakSchema, timeoutMs: number): Promise<Convergence> {
  const start = Date.now();
  const deadline = start + timeoutMs;
  const late = await untilOnline(cluster, deadline);
  if (late.length > 0) {
    return {
      ms: undefined,
      server: undefined,
      violations: late.map((message) => ({ kind: 'not-converged', message })),
    };
  }
  const flushed = await allOf(cluster, 'flush', deadline);
  let violations: Violation[] = flushed.map((message) => ({ kind: 'not-converged', message }));
  let server: Dump | undefined;
  for (let round = 0; round < 5; round++) {
    const caught = await allOf(cluster, 'caughtUp', deadline);
    server = await cluster.server!.call<Dump>('dump', undefined, 15_000);
    const dumps = await Promise.all(
      cluster.clients.map((slot) => slot.child!.call<Dump>('dump', undefined, 15_000)),
    );
    const differ = cluster.clients.flatMap((slot, i) =>
      compareReplica(s, `client ${slot.index}`, server!, dumps[i]),
    );
    if (differ.length === 0 && caught.length === 0 && flushed.length === 0) {
      return { ms: Date.now() - start, server, violations: [] };
    }
    violations = [
      ...flushed.map((message) => ({ kind: 'not-converged' as const, message })),
      ...caught.map((message) => ({ kind: 'not-converged' as const, message })),
      ...differ,
    ];
    if (Date.now() >= deadline || flushed.length > 0) break;
    await sleep(500);
  }
  return { ms: undefined, server, violations };
}
