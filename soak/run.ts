/**
 * `npm run soak`: the Jepsen-style soak of the sync engine. Each seed runs the sync server in a
 * process of its own (PGlite, or a fresh schema of the PostgreSQL server of DATABASE_URL), N
 * client processes on better-sqlite3 files behind fault proxies, a plan of writes and faults
 * drawn from the seed, then checks convergence, the server against the model of the history,
 * rejections, errors, unhandled rejections and server memory. A failing seed is shrunk and
 * printed with its shortest failing history. Exit code 1 when any seed failed.
 *
 * @example
 *   npm run soak -- --seeds 100 --clients 5 --ops 300 --db postgres --parallel 2
 *   npm run soak -- --seed 17 --schema plain --faults cut,kill-server --ops 60
 */
import { Command, Option } from 'commander';
import { SoakChild } from './child.js';
import { installInterruptCleanup } from './interrupt.js';
import { DEFAULT_OPTIONS, type SoakOptions } from './options.js';
import { FAULT_KINDS, type FaultKind, OP_KINDS, type OpKind } from './plan.js';
import { runAndShrink, type SeedOutcome } from './run-and-shrink.js';
import { SCHEMA_VARIANTS } from './schema.js';
import { summaryTable } from './summary.js';

function list<T extends string>(value: string, all: readonly T[], what: string): T[] {
  if (value === 'all') return [...all];
  if (value === 'none' || value === '') return [];
  const items = value.split(',').map((v) => v.trim()) as T[];
  for (const item of items) {
    if (!all.includes(item)) throw new Error(`unknown ${what} "${item}"; use ${all.join(', ')}, all or none`);
  }
  return items;
}

function whole(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got "${value}"`);
  return n;
}

/**
 * Parses the command line into options (see `--help`); throws on a bad option.
 *
 * @example
 *   const options = parseOptions(['--seeds', '10', '--db', 'pglite']);
 */
export function parseOptions(argv: readonly string[]): SoakOptions {
  const program = new Command('soak')
    .description(
      'fault-injection soak of syncline sync: real processes, real faults, a checker that knows the history',
    )
    .option('--seed <n>', 'run this one seed')
    .option('--seeds <count>', 'run this many seeds, from --from on', '3')
    .option('--from <n>', 'the first seed of --seeds', '1')
    .option('--clients <n>', 'client processes', String(DEFAULT_OPTIONS.clients))
    .option('--ops <n>', 'write transactions per seed', String(DEFAULT_OPTIONS.ops))
    .addOption(
      new Option('--db <kind>', 'the server database')
        .choices(['pglite', 'postgres'])
        .default(DEFAULT_OPTIONS.db),
    )
    .addOption(
      new Option(
        '--schema <variant>',
        'plain: no column named n; full: with n; names: also origin, stamp, mutation',
      )
        .choices([...SCHEMA_VARIANTS])
        .default(DEFAULT_OPTIONS.variant),
    )
    .option(
      '--faults <kinds>',
      `fault kinds, comma-separated, or all/none (${FAULT_KINDS.join(', ')})`,
      'all',
    )
    .option('--ops-mix <kinds>', `operation kinds, comma-separated, or all (${OP_KINDS.join(', ')})`, 'all')
    .option(
      '--fault-every <n>',
      'about one fault per this many operations (0: none)',
      String(DEFAULT_OPTIONS.faultEvery),
    )
    .option('--parallel <n>', 'seeds at once, each in a process of its own', '1')
    .option(
      '--converge-timeout <ms>',
      'how long convergence may take once faults stop',
      String(DEFAULT_OPTIONS.convergeTimeoutMs),
    )
    .option('--no-shrink', 'do not shrink failing seeds')
    .option(
      '--shrink-runs <n>',
      'at most this many re-runs to shrink a failing seed',
      String(DEFAULT_OPTIONS.shrinkRuns),
    )
    .option('--quiet', 'no progress lines, only failures and the summary')
    .exitOverride();
  program.parse([...argv], { from: 'user' });
  const o = program.opts();
  const seeds =
    o.seed !== undefined
      ? [whole(o.seed)]
      : Array.from({ length: whole(o.seeds) }, (_, i) => whole(o.from) + i);
  const options: SoakOptions = {
    ...DEFAULT_OPTIONS,
    seeds,
    clients: Math.max(1, whole(o.clients)),
    ops: whole(o.ops),
    db: o.db,
    variant: o.schema,
    faultKinds: list<FaultKind>(o.faults, FAULT_KINDS, 'fault kind'),
    opKinds: list<OpKind>(o.opsMix, OP_KINDS, 'operation kind'),
    faultEvery: whole(o.faultEvery),
    parallel: Math.max(1, whole(o.parallel)),
    convergeTimeoutMs: whole(o.convergeTimeout),
    shrink: o.shrink !== false,
    shrinkRuns: whole(o.shrinkRuns),
    progress: !o.quiet,
  };
  if (options.db === 'postgres' && !process.env.DATABASE_URL) {
    throw new Error('--db postgres needs DATABASE_URL (postgres://user@127.0.0.1:5432/db)');
  }
  return options;
}

/** A progress printer that lets one line through every `everyMs`. */
function throttled(everyMs: number, enabled: boolean): (line: string) => void {
  let last = 0;
  return (line) => {
    if (!enabled || Date.now() - last < everyMs) return;
    last = Date.now();
    process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  };
}

/** The report of one failed seed: its violations and its shortest failing history. */
function failureReport(options: SoakOptions, outcome: SeedOutcome): string[] {
  const { result } = outcome;
  const shown = outcome.shrunk ?? result;
  const lines = [
    '',
    `FAILED seed ${result.seed} (${result.db}, schema ${result.variant}): ${result.violations.length} violations`,
    `  reproduce: npm run soak -- --seed ${result.seed} --db ${result.db} --schema ${result.variant} --clients ${options.clients} --ops ${options.ops} --faults ${options.faultKinds.join(',') || 'none'} --ops-mix ${options.opKinds.join(',')} --fault-every ${options.faultEvery}`,
  ];
  for (const v of result.violations) lines.push(`  [${v.kind}] ${v.message.replace(/\n/g, '\n      ')}`);
  if (outcome.shrunk) {
    lines.push(
      `  shrunk to ${shown.stepIds.length} of ${result.stepIds.length} steps (steps ${shown.stepIds.join(',')}), still failing with:`,
    );
    for (const v of shown.violations) lines.push(`  [${v.kind}] ${v.message.replace(/\n/g, '\n      ')}`);
  }
  for (const note of shown.notes.slice(0, 15)) lines.push(`  note: ${note}`);
  if (shown.dumpFile) lines.push(`  everything recorded: ${shown.dumpFile}`);
  lines.push(`  history (${shown.historyLines.length} steps):`);
  for (const line of shown.historyLines) lines.push(`    ${line}`);
  return lines;
}

async function runInWorkers(options: SoakOptions, progress: (line: string) => void): Promise<SeedOutcome[]> {
  const queue = [...options.seeds];
  const outcomes: SeedOutcome[] = [];
  const perSeedMs = 30 * 60_000;
  const worker = async (n: number) => {
    const child = SoakChild.fork('./seed-worker.ts', [], { name: `seed worker ${n}` });
    child.onEvent = (event) => {
      if (event.event === 'progress') progress(String(event.data));
    };
    try {
      while (queue.length > 0) {
        const seed = queue.shift()!;
        outcomes.push(await child.call<SeedOutcome>('run', { options, seed }, perSeedMs));
        if (!options.progress) continue;
        const last = outcomes.at(-1)!.result;
        process.stderr.write(`[soak] seed ${seed} done: ${last.violations.length} violations\n`);
      }
    } finally {
      await child.kill('SIGTERM');
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(options.parallel, options.seeds.length) }, (_, i) => worker(i)),
  );
  return outcomes.sort((a, b) => a.result.seed - b.result.seed);
}

async function main(): Promise<number> {
  installInterruptCleanup();
  let options: SoakOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    const message = (error as Error).message;
    if (!/outputHelp|help|version/.test((error as { code?: string }).code ?? '')) console.error(message);
    return (error as { exitCode?: number }).exitCode ?? 2;
  }
  const progress = throttled(5000, options.progress);
  const label = `${options.db}, schema ${options.variant}, ${options.clients} clients, ${options.ops} ops, faults ${options.faultKinds.join(',') || 'none'}`;
  process.stderr.write(`[soak] ${options.seeds.length} seeds (${label}), ${options.parallel} at once\n`);
  let outcomes: SeedOutcome[];
  if (options.parallel > 1) {
    outcomes = await runInWorkers(options, progress);
  } else {
    outcomes = [];
    for (const seed of options.seeds) {
      outcomes.push(await runAndShrink(options, seed, progress));
      const last = outcomes.at(-1)!.result;
      if (options.progress)
        process.stderr.write(`[soak] seed ${seed} done: ${last.violations.length} violations\n`);
    }
  }
  for (const outcome of outcomes) {
    if (outcome.result.violations.length > 0) console.log(failureReport(options, outcome).join('\n'));
  }
  console.log('');
  console.log(
    summaryTable(
      outcomes.map((o) => o.result),
      label,
    ).join('\n'),
  );
  return outcomes.some((o) => o.result.violations.length > 0) ? 1 : 0;
}

process.exitCode = await main();
