/**
 * `npm run bench:abuse`: what hostile connections cost everyone else, against a baseline measured in
 * the same run. The sync server runs in a process of its own (server-child.ts: PostgreSQL from
 * DATABASE_URL in a fresh schema, else PGlite in memory), so its RSS is its alone. Two legitimate
 * sync clients (alice writes `counters`, bob's live query watches it) run in this process, the
 * abusive connections in another (abuser-child.ts).
 *
 *   latency  alice's write → bob's live query, p50 over BENCH_ABUSE_WRITES writes, without and then
 *            with BENCH_ABUSE_CONNECTIONS abusive connections open (abusers.ts: floods of invalid
 *            messages and of pings, stalled snapshots, sockets that never say hello), each a user of
 *            its own, none reading. Target: within 2x of the run without them.
 *   flood    one connection (reconnecting whenever the server closes it) sends BENCH_ABUSE_FLOOD_MIB
 *            MiB of pings, then as much of invalid messages, without reading: the server's peak RSS
 *            above its start. Target: under 200 MiB.
 *
 * Sizes (environment, defaults in brackets): BENCH_ABUSE_WRITES [100], BENCH_ABUSE_CONNECTIONS [10],
 * BENCH_ABUSE_FLOOD_MIB [64], BENCH_ABUSE_ITEMS [20000] (rows of the stalled snapshots),
 * BENCH_ABUSE_KINDS [invalid,pings,stalled-snapshot,silent]. About a minute. Exits 1 when a measurement failed or a legitimate client lost its connection.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { eq } from '../../src/index.js';
import { within } from '../support/bounded-wait.js';
import { envCount } from '../support/env-count.js';
import { quantile } from '../support/measure.js';
import { formatBytes } from '../support/memory-sampler.js';
import { type BenchClient, openBenchClient } from '../sync/bench-client.js';
import { counters } from '../sync/bench-schema.js';
import { absoluteNow, SeenRecorder } from '../sync/live-watchers.js';
import { formatMs, formatOutcomes, type Outcome } from '../sync/outcome.js';
import { type AbuseKind, Abuser } from './abusers.js';

const WRITES = envCount('BENCH_ABUSE_WRITES', 100);
const CONNECTIONS = envCount('BENCH_ABUSE_CONNECTIONS', 10);
const FLOOD_BYTES = envCount('BENCH_ABUSE_FLOOD_MIB', 64) * 1024 * 1024;
const ITEMS = envCount('BENCH_ABUSE_ITEMS', 20_000);
const MIB = 1024 * 1024;
const ALL_KINDS: readonly AbuseKind[] = ['invalid', 'pings', 'stalled-snapshot', 'silent'];
/** BENCH_ABUSE_KINDS=pings,silent picks the abusers' kinds (default all, taken in turn). */
const KINDS = (process.env.BENCH_ABUSE_KINDS || ALL_KINDS.join(',')).split(',').map((kind) => {
  if (!ALL_KINDS.includes(kind as AbuseKind)) {
    throw new Error(`bench: BENCH_ABUSE_KINDS takes ${ALL_KINDS.join(', ')}; got "${kind}"`);
  }
  return kind as AbuseKind;
});

const progress = (line: string) => console.log(`[abuse] ${line}`);

/** The server process and its URL, once it is listening. */
async function startServer(): Promise<{ child: ChildProcess; url: string; label: string }> {
  const child = fork(fileURLToPath(new URL('./server-child.ts', import.meta.url)), [String(ITEMS)], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const first = new Promise<{ url: string; label: string }>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const end = text.indexOf('\n');
      if (end >= 0) resolve(JSON.parse(text.slice(0, end)));
    });
    child.once('exit', (code) =>
      reject(new Error(`bench: the server process exited (${code}) before listening`)),
    );
  });
  const { url, label } = await within(first, 120_000, 'the server process to listen');
  return { child, url, label };
}

/** The resident memory of process `pid`, in bytes (Linux /proc, else ps). */
function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // Not Linux: ask ps.
  }
  return (
    Number(
      execFileSync('ps', ['-o', 'rss=', '-p', String(pid)])
        .toString()
        .trim(),
    ) * 1024
  );
}

/** alice's writes to `counters` row 1 until bob's live query shows each: p50 and p99 in ms. */
async function writeLatency(alice: BenchClient, recorder: SeenRecorder, from: number) {
  const times: number[] = [];
  for (let i = 1; i <= WRITES; i++) {
    const value = from + i;
    const seen = recorder.seen(value);
    const start = absoluteNow();
    await alice.db.update(counters).set({ value }).where(eq(counters.id, 1));
    const {
      at: [at],
    } = await within(seen, 10_000, `bob to see write ${i}`);
    times.push(at! - start);
  }
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), next: from + WRITES };
}

/** Runs `kind` floods of `bytes` from one connection while sampling the server's RSS every 20 ms. */
async function flood(pid: number, kind: AbuseKind, bytes: number) {
  await sleep(1000);
  const start = rssOf(pid);
  let peak = start;
  const abuser = new Abuser(url, kind, `flooder-${kind}`, bytes);
  const began = Date.now();
  while (!(await Promise.race([abuser.finished.then(() => true), sleep(20).then(() => false)]))) {
    peak = Math.max(peak, rssOf(pid));
    if (Date.now() - began > 300_000) {
      await abuser.stop();
      throw new Error(`bench: the ${kind} flood did not finish within 300 s`);
    }
  }
  await sleep(2000);
  const after = rssOf(pid);
  progress(
    `${kind} flood: ${formatBytes(abuser.sentBytes)} sent over ${abuser.connections} connections ` +
      `(${abuser.refused} refused) in ${formatMs(Date.now() - began)}; server RSS ${formatBytes(start)} → peak ` +
      `${formatBytes(peak)}, ${formatBytes(after)} 2 s after`,
  );
  return { start, peak, after, abuser };
}

const { child, url, label } = await startServer();
progress(`server on ${label} at ${url} (pid ${child.pid})`);
const outcomes: Outcome[] = [];
let failed = false;
const clients: BenchClient[] = [];
try {
  const alice = await openBenchClient(url, [{ table: counters }], 'alice');
  const bob = await openBenchClient(url, [{ table: counters }], 'bob');
  clients.push(alice, bob);
  await Promise.all(clients.map((c) => c.start()));
  // bob's live query takes its first rows as the value already there: they must be the snapshot's.
  await Promise.all(clients.map((c) => c.caughtUp(30_000, 'a legitimate client to catch up')));
  const recorder = new SeenRecorder('bench process');
  await recorder.watch([bob]);

  const quiet = await writeLatency(alice, recorder, 0);
  progress(`without abusers: p50 ${formatMs(quiet.p50)}, p99 ${formatMs(quiet.p99)}`);

  const kinds = Array.from({ length: CONNECTIONS }, (_, i) => KINDS[i % KINDS.length]!);
  const abusers = fork(fileURLToPath(new URL('./abuser-child.ts', import.meta.url)), [url, kinds.join(',')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await within(
    new Promise((resolve) => abusers.once('message', resolve)),
    60_000,
    'the abusers process to start',
  );
  await sleep(2000);
  const loud = await writeLatency(alice, recorder, quiet.next).finally(() => abusers.send('stop'));
  const report = await within(
    new Promise<{ sentBytes: number; connections: number; refused: number }>((resolve) =>
      abusers.once('message', resolve as (message: unknown) => void),
    ),
    30_000,
    'the abusers to stop',
  );
  progress(
    `with ${CONNECTIONS} abusers in a process of their own (${formatBytes(report.sentBytes)} sent, ` +
      `${report.connections} connections opened, ${report.refused} refused at the upgrade): ` +
      `p50 ${formatMs(loud.p50)}, p99 ${formatMs(loud.p99)}`,
  );
  const ratio = loud.p50 / quiet.p50;
  outcomes.push({
    measurement: `write → live query, ${CONNECTIONS} abusive connections open`,
    result: `p50 ${formatMs(loud.p50)}, p99 ${formatMs(loud.p99)}`,
    baseline: `p50 ${formatMs(quiet.p50)} without them`,
    ratio: `${ratio.toFixed(2)}x`,
    target: '<= 2x',
    met: ratio <= 2,
  });

  for (const kind of ['pings', 'invalid'] as const) {
    const { start, peak, abuser } = await flood(child.pid!, kind, FLOOD_BYTES);
    const above = peak - start;
    outcomes.push({
      measurement: `one connection floods ${formatBytes(abuser.sentBytes)} of ${kind}, never reading`,
      result: `server RSS peak +${formatBytes(above)}`,
      baseline: `RSS at start ${formatBytes(start)}`,
      ratio: `${(peak / start).toFixed(2)}x`,
      target: '< 200 MiB above start',
      met: above < 200 * MIB,
    });
  }
  const drops = alice.drops + bob.drops;
  if (drops > 0 || alice.errors.length + bob.errors.length > 0) {
    failed = true;
    progress(
      `legitimate clients: ${drops} dropped connections, errors: ${[...alice.errors, ...bob.errors].map((e) => e.message).join('; ')}`,
    );
  }
  recorder.stop();
} catch (error) {
  failed = true;
  console.error(error);
  for (const [i, c] of clients.entries()) {
    for (const e of c.errors) console.error(`client ${i === 0 ? 'alice' : 'bob'} reported: ${e.message}`);
  }
} finally {
  await Promise.allSettled(clients.map((c) => c.close()));
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
}
console.log(`\nServer: ${label}, in a process of its own.\n`);
console.log(formatOutcomes(outcomes));
console.log(
  '\nRatios compare with a baseline measured in the same run: the same writes without abusive connections',
);
console.log('(latency), the server process RSS before the flood began (flood).');
process.exit(failed || outcomes.some((o) => o.met === false) ? 1 : 0);
