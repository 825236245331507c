import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Database, eq, sql } from '../../src/index.js';
import {
  closeClients,
  directWriter,
  type E2eClient,
  e2eSchema,
  expectConverged,
  fixedKeys,
  items,
  openClients,
  settle,
} from '../support/sync-fixture.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';

/**
 * Random inserts, updates and deletes by three clients and a backend on a key space of four rows
 * (so they collide), interleaved with random disconnects: clients stopped and started, connections
 * cut at once or after a few more bytes (in the middle of a frame), the server refused for a
 * while. Once everyone is back online, has flushed and caught up, every replica equals the server,
 * and no write was rejected. Replay a failure with FC_SEED=<seed> (the seed is in the message),
 * or one counterexample with FC_EXAMPLE='<its JSON>' (FC_RUNS times); FC_RUNS sets the runs.
 */

const CLIENTS = 3;
const KEYS = fixedKeys(4);
const NUM_RUNS = Number(process.env.FC_RUNS ?? 10);
// The default run stops early past 25 s (a loaded machine is slow); asking for FC_RUNS means all
// of them: no time limit then, and a test timeout that grows with the runs.
const TIME_LIMIT_MS = process.env.FC_RUNS === undefined ? 25_000 : undefined;
const TEST_TIMEOUT_MS = Math.max(90_000, NUM_RUNS * 10_000);

const client = fc.integer({ min: 0, max: CLIENTS - 1 });
const key = fc.integer({ min: 0, max: KEYS.length - 1 });

const action = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      client,
      key,
      qty: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
      done: fc.option(fc.boolean(), { nil: undefined }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), client, key }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('backend' as const), key, remove: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stop' as const), client }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('start' as const), client }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), client }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('cutAfter' as const),
      client,
      bytes: fc.integer({ min: 1, max: 3000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('refuse' as const), client, on: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 15 }) }),
  },
);

type Action = typeof action extends fc.Arbitrary<infer A> ? A : never;

/** What the server logged and stamped, and what each client holds: to read a failure. */
async function explain(serverDb: Database<typeof e2eSchema>, clients: readonly E2eClient[]): Promise<string> {
  const log = await serverDb.execute<Record<string, unknown>>(
    sql`SELECT id, op, pk->>'id' AS key, hlc, origin, mutation_id, "row"->>'title' AS title, old_values
          FROM _syncline_changes WHERE table_name = 'items' ORDER BY id`,
  );
  const stamps = await serverDb.execute<Record<string, unknown>>(
    sql`SELECT pk->>'id' AS key, cols->>'title' AS title, created, deleted FROM _syncline_stamps WHERE table_name = 'items'`,
  );
  const ids = clients.map((c) => `${c.name}=${c.sync.clientId}`).join(' ');
  const rows = await Promise.all(
    clients.map(
      async (c) =>
        `${c.name}: ${JSON.stringify(await c.db.select({ id: items.id, title: items.title }).from(items))}\n  frames of ${c.name}:\n  ${c.tap.recent.join('\n  ')}`,
    ),
  );
  return [
    `clients: ${ids}`,
    'log:',
    ...log.map((r) => JSON.stringify(r)),
    'stamps:',
    ...stamps.map((r) => JSON.stringify(r)),
    ...rows,
  ].join('\n');
}

/** Runs one scenario on a fresh server and fresh clients, and checks they converge. */
async function runScenario(driver: 'pglite' | 'postgres', actions: readonly Action[]): Promise<void> {
  const t = await startTestServer(e2eSchema, { driver });
  const direct = await directWriter(t);
  let clients: E2eClient[] = [];
  try {
    clients = await openClients({ port: t.server.port, token: t.token }, CLIENTS);
    const started = clients.map(() => true);
    await Promise.all(clients.map((c) => c.sync.start()));
    for (const [i, step] of actions.entries()) {
      const title = `${step.kind} ${i}`;
      if (step.kind === 'write') {
        const c = clients[step.client];
        const id = KEYS[step.key];
        const [row] = await c.db.select({ id: items.id }).from(items).where(eq(items.id, id));
        const values = { title, qty: step.qty, done: step.done };
        if (row) await c.db.update(items).set(values).where(eq(items.id, id));
        else await c.db.insert(items).values({ id, ...values });
      } else if (step.kind === 'delete') {
        await clients[step.client].db.delete(items).where(eq(items.id, KEYS[step.key]));
      } else if (step.kind === 'backend') {
        const [text, params] = step.remove
          ? ['DELETE FROM items WHERE id = $1', [KEYS[step.key]]]
          : [
              `INSERT INTO items (id, title, qty, done, tags) VALUES ($1, $2, 0, false, '[]')
               ON CONFLICT (id) DO UPDATE SET title = excluded.title`,
              [KEYS[step.key], title],
            ];
        await direct.query(text, params);
      } else if (step.kind === 'stop') {
        started[step.client] = false;
        await clients[step.client].sync.stop();
      } else if (step.kind === 'start') {
        started[step.client] = true;
        await clients[step.client].sync.start();
      } else if (step.kind === 'cut') {
        clients[step.client].proxy.cutAll();
      } else if (step.kind === 'cutAfter') {
        clients[step.client].proxy.cutAfterClientBytes(step.bytes);
      } else if (step.kind === 'refuse') {
        clients[step.client].proxy.setRefusing(step.on);
      } else {
        await sleep(step.ms);
      }
    }
    for (const [i, c] of clients.entries()) {
      c.proxy.setRefusing(false);
      if (!started[i]) await c.sync.start();
    }
    await settle(clients, 20_000);
    try {
      await expectConverged(t.server.db, clients);
      for (const c of clients) expect(c.rejected, `client ${c.name} had writes rejected`).toEqual([]);
    } catch (error) {
      (error as Error).message += `\n${await explain(t.server.db, clients)}`;
      throw error;
    }
  } finally {
    await closeClients(clients);
    await direct.close();
    await t.close();
  }
}

for (const driver of serverDrivers) {
  describe(`e2e property [${driver}]`, () => {
    it(
      'random writes and disconnects across three clients always converge on the server',
      async () => {
        if (process.env.FC_EXAMPLE) {
          // Replays one counterexample (its JSON, as printed), FC_RUNS times: timing varies per run.
          const example = JSON.parse(process.env.FC_EXAMPLE) as Action[][];
          for (let run = 0; run < NUM_RUNS; run++) await runScenario(driver, example[0]);
          return;
        }
        const seed =
          process.env.FC_SEED === undefined
            ? Date.now() ^ (Math.random() * 2 ** 31)
            : Number(process.env.FC_SEED);
        let runs = 0;
        try {
          await fc.assert(
            fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 40 }), (actions) => {
              runs++;
              return runScenario(driver, actions);
            }),
            {
              numRuns: NUM_RUNS,
              seed,
              interruptAfterTimeLimit: TIME_LIMIT_MS,
              markInterruptAsFailure: false,
            },
          );
          // How many scenarios ran (fewer than asked when the time limit stopped it), to tell apart.
          if (process.env.FC_RUNS !== undefined || runs < NUM_RUNS) {
            console.info(`e2e property [${driver}]: ${runs} scenarios passed, FC_SEED=${seed}`);
          }
        } catch (error) {
          throw new Error(
            `e2e property failed with FC_SEED=${seed} (replay with that variable set)\n${(error as Error).message}`,
            {
              cause: error,
            },
          );
        }
      },
      TEST_TIMEOUT_MS,
    );
  });
}
