/**
 * The sync server of `npm run bench:abuse`, in a process of its own so that its memory (RSS) is
 * its alone: the bench server of `bench:sync` (PostgreSQL from DATABASE_URL in a fresh schema,
 * else PGlite in memory), with `items` seeded so that a snapshot is big enough to stall on. It
 * prints one JSON line `{ "url": ... }` once listening, and closes (dropping its schema) on
 * SIGTERM or when its parent goes away.
 *
 * Run by bench/abuse/run.ts: `tsx bench/abuse/server-child.ts <items>`.
 */
import { startBenchServer } from '../sync/bench-server.js';

const items = Number(process.argv[2] ?? '20000');
const bench = await startBenchServer({
  databaseUrl: process.env.DATABASE_URL || undefined,
  seed: { items, itemsBig: 0 },
  progress: (line) => process.stderr.write(`[server] ${line}\n`),
});
let closing: Promise<void> | undefined;
const close = () => {
  closing ??= bench.close().finally(() => process.exit(0));
  return closing;
};
process.on('SIGTERM', () => void close());
process.on('disconnect', () => void close());
process.stdout.write(`${JSON.stringify({ url: bench.url, label: bench.label })}\n`);
