/**
 * One soak run: a fresh database, the server and client processes, the seed's plan (or the part
 * of it a shrink keeps), then, once faults stopped, convergence and every check. Everything it
 * started is stopped and removed before it returns, whatever happened.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory } from './check-history.js';
import type { Dump } from './check-replicas.js';
import { checkReports } from './check-reports.js';
import { Cluster } from './cluster.js';
import { converge } from './converge.js';
import { makeDeployment } from './deployment.js';
import { History } from './history.js';
import { onInterrupt } from './interrupt.js';
import type { LogOrder } from './log-order.js';
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
  /** For a failure: a JSON file with the whole history and the server's final rows. */
  readonly dumpFile: string | undefined;
  /** Each step and how it ended, one line each. */
  readonly historyLines: readonly string[];
  readonly durationMs: number;
  readonly batches: { readonly applied: number; readonly rejected: number; readonly unanswered: number };
  /** Write steps by outcome: committed, failed (a local constraint), skipped (process down), killed. */
  readonly writes: {
    readonly ok: number;
    readonly failed: number;
    readonly skipped: number;
    readonly indeterminate: number;
  };
}

/** Writes what a failed run recorded to a JSON file in the temp dir; returns its path. */
function writeFailureFile(
  seed: number,
  options: SoakOptions,
  history: History,
  server: Dump | undefined,
  only: ReadonlySet<number> | undefined,
): string {
  const dir = join(tmpdir(), 'syncline-soak-failures');
  mkdirSync(dir, { recursive: true });
  const file = join(
    dir,
    `seed-${seed}-${options.db}-${options.variant}${only ? `-${only.size}-steps` : ''}.json`,
  );
  const replacer = (_key: string, value: unknown) =>
    typeof value === 'bigint'
      ? `${value}n`
      : value instanceof Uint8Array
        ? `hex:${Buffer.from(value).toString('hex')}`
        : value instanceof Map
          ? Object.fromEntries(value)
          : value;
  writeFileSync(
    file,
    JSON.stringify(
      {
        seed,
        options,
        steps: history.steps,
        batches: [...history.batches.values()],
        backend: history.backend,
        ticks: history.ticks,
        rejections: history.rejections,
        errors: history.errors,
        unhandled: history.unhandled,
        server,
      },
      replacer,
      1,
    ),
  );
  return file;
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
  let finalServer: Dump | undefined;
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
    finalServer = result.server;
    history.noteLogOrder(await cluster.server!.call<LogOrder>('logOrder', undefined, 30_000));
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
  const reported = checkReports(history, cluster?.serverErrors ?? []);
  violations.push(...reported.violations);
  notes.push(...reported.notes);
  const batches = [...history.batches.values()];
  const writeOutcomes = history.steps.filter((r) => r.step.kind === 'write').map((r) => r.outcome);
  const dumpFile =
    violations.length > 0 ? writeFailureFile(seed, options, history, finalServer, only) : undefined;
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
    dumpFile,
    historyLines: history.steps.map(
      (r) =>
        `${describeStep(r.step)}${r.outcome === 'ok' ? '' : ` [${r.outcome}${r.detail ? `: ${r.detail}` : ''}]`}`,
    ),
    durationMs: Date.now() - started,
    writes: {
      ok: writeOutcomes.filter((o) => o === 'ok').length,
      failed: writeOutcomes.filter((o) => o === 'failed').length,
      skipped: writeOutcomes.filter((o) => o === 'skipped').length,
      indeterminate: history.steps.filter((r) => r.step.kind === 'fault' && r.outcome === 'indeterminate')
        .length,
    },
    batches: {
      applied: batches.filter((b) => b.status === 'applied').length,
      rejected: batches.filter((b) => b.status === 'rejected').length,
      unanswered: batches.filter((b) => b.status === undefined).length,
    },
  };
}
