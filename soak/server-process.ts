/**
 * The sync server in a process of its own, on the soak's database: a PGlite data folder
 * (`pglite <dir>`) or a schema of a PostgreSQL server (`postgres <url> <schema>`). It tells the
 * parent its port once listening, then makes the backend's writes (`server.db`, and on PGlite
 * also the raw SQL, PGlite being one session in this process), prunes the change log, reports its
 * heap, dumps its tables. Its JSON log lines go to stderr. It may be SIGKILLed at any moment and
 * started again on the same database.
 *
 * Run by the harness: `server-process.ts <variant> pglite <dir>` or `... postgres <url> <schema>`.
 */

import pg from 'pg';
import { postgres } from '../src/drivers/node-postgres/index.js';
import { pglite } from '../src/drivers/pglite/index.js';
import { createSyncServer, type MutatorDefinition } from '../src/sync/server/index.js';
import { emit, serveParent } from './child.js';
import { readLogOrder, recordLogOrder } from './log-order.js';
import { soakMutators } from './mutators.js';
import type { Step } from './plan.js';
import { type SchemaVariant, soakSchema } from './schema.js';
import { SOAK_JWT_SECRET } from './tokens.js';
import { applyRawSql, applyServerWrites, loggedInThisTransaction } from './writes.js';

if (process.env.SOAK_TRACE_PROMISES === '1') tracePgQueries();

/**
 * Debugging aid (SOAK_TRACE_PROMISES=1): every pg query's rejection carries the stack of the code
 * that made the query, so an unhandled one says where it came from.
 */
function tracePgQueries(): void {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const query = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const result = query.apply(this, args);
    if (!(result instanceof Promise)) return result;
    const made = new Error('query made at').stack ?? '';
    return result.catch((error: Error) => {
      error.stack = `${error.stack}\n${made}`;
      throw error;
    });
  };
}

const [variant, kind, where, namespace] = process.argv.slice(2) as [SchemaVariant, string, string, string?];
const s = soakSchema(variant);
const database =
  kind === 'pglite' ? pglite({ dataDir: where }) : postgres({ connectionString: where, schema: namespace });
const server = await createSyncServer({
  schema: s.schema,
  database,
  auth: { jwtSecret: SOAK_JWT_SECRET },
  log: { level: 'warn' },
  mutators: reportingMutators(),
});

/**
 * The soak's mutators, each server run telling the harness what capture logged for it (the
 * checker models a mutation by what it did on the server). Told before the commit: a run whose
 * transaction then fails is run again when the batch is pushed again, and the last report of a
 * mutation is the one that committed (a batch settled before is answered without running).
 */
function reportingMutators() {
  const mutators = soakMutators(s);
  const report = <A>(definition: MutatorDefinition<A>): MutatorDefinition<A> => ({
    ...definition,
    run: async (tx, args, ctx) => {
      await definition.run(tx, args, ctx);
      const changes = await loggedInThisTransaction(tx);
      emit('mutation', { clientId: ctx.clientId, mutationId: ctx.mutationId, changes });
    },
  });
  return { retitle: report(mutators.retitle), clearNotes: report(mutators.clearNotes) };
}
await recordLogOrder(server.db);
await server.listen({ port: 0 });

async function dump(): Promise<Record<string, Record<string, unknown>[]>> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const table of s.tables) {
    const rows = (await server.db.select().from(table as any)) as Record<string, unknown>[];
    out[table.$name] = rows.sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
  }
  return out;
}

serveParent({
  write: (step: Extract<Step, { kind: 'write' }>) =>
    step.by === 'raw-sql'
      ? applyRawSql(server.db, s, step.writes, step.truncate ?? false)
      : applyServerWrites(server.db, s, step.writes),
  prune: () => server.pruneChangeLog({ olderThanMs: 0 }),
  logOrder: () => readLogOrder(server.db),
  heap() {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().heapUsed;
  },
  dump,
  connections: () => server.connections,
  close: () => server.close({ timeoutMs: 2000 }),
});
emit('listening', { port: server.port });
