/**
 * One soak run: a fresh database, the server and client processes, the seed's plan (or the part
 * of it a shrink keeps), then, once faults stopped, convergence and every check. Everything it
 * started is stopped and removed before it returns, whatever happened.
 */
import { checkHistory } from './check-history.js';
import { Cluster } from './cluster.js';
import { converge } from './converge.js';
import { makeDeployment } from './deployment.js';
import { History } from './history.js';
import { onInterrupt } from './interrupt.js';
import { makePlan } from './make-plan.js';
import type { SoakOptions } from './options.js';
import { describeStep, type FaultKind, type Step } from './plan.js';
import { soakSchema } from './schema.js';
import { StepRunner } from './step-runner.js';
import type { Violation } from './violations.js';

/**
 * What one run found.
 *
 * @example
 *   const result = await runSeed(options, 7);
 *   if (result.violations.length > 0) console.log(result.historyLines.join('\n'));
 */
export interface SeedResult {
  readonly seed: number;
  readonly db: string;
  readonly variant: string;
  readonly ops: number;
  /** The ids of the plan's steps this run carried out. */
  readonly stepIds: readonly number[];
  readonly faults: Readonly<Partial<Record<FaultKind, number>>>;
  readonly skippedFaults: Readonly<Partial<Record<FaultKind, string>>>;
  readonly convergeMs: number | undefined;
  readonly violations: readonly Violation[];
  /** Things worth a look that are not violations (the model's anomalies). */
  readonly notes: readonly string[];
  /** Each step and how it ended, one line each. */
  readonly historyLines: readonly string[];
  readonly durationMs: number;
  readonly batches: { readonly applied: number; readonly rejected: number; readonly unanswered: number };
}

/** Rejection reasons the soak schema explains: its unique name, its foreign key. */
const EXPLAINED = /unique constraint|foreign key constraint/i;

/** Checks what the processes reported (rejections, errors, unhandled rejections, server log). */
function reportedViolations(history: History, serverErrors: readonly string[]): Violation[] {
  const found: Violation[] = [];
  const unexplained = history.rejections.filter((r) => !EXPLAINED.test(r.reason));
  for (const r of unexplained.slice(0, 5)) {
    found.push({
      kind: 'unexplained-rejection',
      message: `client ${r.client} mutation ${r.mutationId}: ${r.reason}`,
    });
  }
  const byMessage = new Map<string, number>();
  for (const e of history.errors) {
    const key = `${e.who}: ${e.message.slice(0, 300)}`;
    byMessage.set(key, (byMessage.get(key) ?? 0) + 1);
  }
  for (const [key, count] of byMessage) {
    found.push({
      kind: key.startsWith('harness') ? 'harness' : 'client-error',
      message: count > 1 ? `${key} (×${count})` : key,
    });
  }
  for (const u of history.unhandled.slice(0, 5)) {
    found.push({ kind: 'unhandled-rejection', message: `${u.who}: ${u.message.slice(0, 600)}` });
  }
  for (const line of serverErrors.slice(0, 5))
    found.push({ kind: 'server-error', message: line.slice(0, 400) });
  return found;
}

/**
 * Runs `seed` with `options`; with `only`, just the plan's steps of those ids.
 * `progress` is called after every step with a short status line.
 *
 * @example
 *   const result = await runSeed({ ...DEFAULT_OPTIONS, clients: 3 }, 42);
 */
export async function runSeed(
  options: SoakOptions,
  seed: number,
  only?: ReadonlySet<number>,
  progress?: (line: string) => void,
): Promise<SeedResult> {
  const started = Date.now();
  const s = soakSchema(options.variant);
  const plan = makePlan({ ...options, seed });
  const steps: Step[] = only ? plan.steps.filter((step) => only.has(step.id)) : [...plan.steps];
  const history = new History();
  const violations: Violation[] = [];
  const notes: string[] = [];
  let convergeMs: number | undefined;
  const deployment = await makeDeployment(options.db, s, seed);
  let cluster: Cluster | undefined;
  const forget = onInterrupt(async () => {
    await cluster?.close();
    await deployment.dispose();
  });
  try {
    cluster = await Cluster.start(s, deployment, history, options.clients);
    const runner = new StepRunner(cluster, history, s);
    for (const [i, step] of steps.entries()) {
      await runner.run(step);
      const faults = [...history.faults.values()].reduce((a, b) => a + b, 0);
      progress?.(`step ${i + 1}/${steps.length}, ${history.ops} ops, ${faults} faults`);
    }
    await runner.heal(options.convergeTimeoutMs);
    progress?.('faults stopped, converging');
    const result = await converge(cluster, s, options.convergeTimeoutMs);
    convergeMs = result.ms;
    violations.push(...result.violations);
    if (result.server) {
      const checked = checkHistory(s, history, result.server);
      violations.push(...checked.violations);
      notes.push(...checked.notes);
    }
    const heap = await cluster.server!.call<number>('heap', undefined, 10_000);
    if (heap > cluster.serverStartHeap + options.memorySlackBytes) {
      violations.push({
        kind: 'memory',
        message: `server heap ${(heap / 2 ** 20).toFixed(1)} MB at the end, ${(cluster.serverStartHeap / 2 ** 20).toFixed(1)} MB at its start`,
      });
    }
  } catch (error) {
    violations.push({ kind: 'harness', message: String((error as Error)?.message ?? error).slice(0, 800) });
  } finally {
    await cluster?.close().catch(() => {});
    await deployment.dispose().catch(() => {});
    forget();
  }
  violations.push(...reportedViolations(history, cluster?.serverErrors ?? []));
  const batches = [...history.batches.values()];
  return {
    seed,
    db: options.db,
    variant: options.variant,
    ops: history.ops,
    stepIds: steps.map((step) => step.id),
    faults: Object.fromEntries(history.faults),
    skippedFaults: Object.fromEntries(history.skippedFaults),
    convergeMs,
    violations,
    notes,
    historyLines: history.steps.map(
      (r) =>
        `${describeStep(r.step)}${r.outcome === 'ok' ? '' : ` [${r.outcome}${r.detail ? `: ${r.detail}` : ''}]`}`,
    ),
    durationMs: Date.now() - started,
    batches: {
      applied: batches.filter((b) => b.status === 'applied').length,
      rejected: batches.filter((b) => b.status === 'rejected').length,
      unanswered: batches.filter((b) => b.status === undefined).length,
    },
  };
}
