/**
 * `npm run bench:move-in`: how long a row that moves into a user's shape through a membership table
 * takes to reach her live query, against a baseline measured in the same run: subscribing to the
 * same rows. The server runs on PostgreSQL from DATABASE_URL (a fresh schema, dropped at the end),
 * else on PGlite in memory; alice is an in-memory better-sqlite3 client in this process, over a real
 * WebSocket on 127.0.0.1. Her todos shape is the whole table, narrowed by the read rule to the
 * lists she is a member of.
 *
 *   subscribe  alice (a member of one list) subscribes to todos: time until her live query shows the
 *              list's BENCH_MOVE_IN_TODOS todos.
 *   move-in    she is made a member of a second list with as many todos: time from the membership
 *              insert until her live query shows them (the shape is sent again whole, so her client
 *              receives both lists' todos). Then the membership is deleted and the todos leave.
 *
 * Each is run BENCH_MOVE_IN_RUNS times (default 5) and the median reported. Sizes: BENCH_MOVE_IN_TODOS
 * [1000]. About 20 s.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { PGlite } from '@electric-sql/pglite';
import { SignJWT } from 'jose';
import pg from 'pg';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { count, eq, openDatabase, sql } from '../../src/index.js';
import { syncClient } from '../../src/sync/client/index.js';
import { createSyncServer } from '../../src/sync/server/index.js';
import { lists, members, shareRules, shareSchema, todos } from '../../test/support/share-schema.js';
import { within } from '../support/bounded-wait.js';
import { envCount } from '../support/env-count.js';
import { formatMs, formatOutcomes, type Outcome } from './outcome.js';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const todoCount = envCount('BENCH_MOVE_IN_TODOS', 1000);
  const runs = envCount('BENCH_MOVE_IN_RUNS', 5);
  const url = process.env.DATABASE_URL || undefined;
  const namespace = `bench_move_in_${process.pid}`;
  let instance: PGlite | undefined;
  if (url) {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${namespace}"`);
    await admin.end();
  } else {
    instance = new PGlite();
    await instance.waitReady;
  }
  const secret = 'bench-move-in-secret-of-at-least-32-bytes';
  const server = await createSyncServer({
    schema: shareSchema,
    database: url ? postgres({ connectionString: url, schema: namespace }) : pglite({ instance: instance! }),
    auth: { jwtSecret: secret },
    rules: shareRules,
    log: { level: 'silent' },
  });
  await server.listen({ port: 0, host: '127.0.0.1' });
  console.log(
    `bench:move-in: ${url ? 'PostgreSQL' : 'PGlite in memory'}, ${todoCount} todos per list, ${runs} runs`,
  );
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
  const db = await openDatabase(shareSchema, sqlite());
  const sync = syncClient(db, { url: server.url, token, shapes: [{ table: members }, { table: lists }] });
  const subscribeMs: number[] = [];
  const moveInMs: number[] = [];
  try {
    await sync.start();
    /** Resolves once alice's live query counts `n` todos in `listId`. */
    const shows = (listId: string, n: number) =>
      new Promise<void>((resolve) => {
        const live = db.select({ n: count() }).from(todos).where(eq(todos.listId, listId)).watch();
        const stop = live.subscribe(([row]) => {
          if (Number(row?.n) !== n) return;
          queueMicrotask(() => stop());
          resolve();
        });
      });
    const newList = async () => {
      const id = randomUUID();
      await server.db.insert(lists).values({ id, name: 'list' });
      await server.db.execute(
        sql`INSERT INTO todos (id, list_id, title) SELECT gen_random_uuid(), ${id}, 'todo ' || g FROM generate_series(1, ${todoCount}::int) g`,
      );
      return id;
    };
    for (let run = 0; run < runs; run++) {
      const own = await newList();
      const shared = await newList();
      await server.db.insert(members).values({ id: randomUUID(), listId: own, userId: 'alice' });
      await within(sync.caughtUp(), 30_000, 'the membership');
      let at = performance.now();
      const sub = sync.subscribe({ table: todos, id: `todos-${run}` });
      await within(shows(own, todoCount), 30_000, 'the subscription');
      subscribeMs.push(performance.now() - at);

      const grant = randomUUID();
      const arrived = shows(shared, todoCount);
      at = performance.now();
      await server.db.insert(members).values({ id: grant, listId: shared, userId: 'alice' });
      await within(arrived, 30_000, 'the move-in');
      moveInMs.push(performance.now() - at);

      const left = shows(shared, 0);
      await server.db.delete(members).where(eq(members.id, grant));
      await within(left, 30_000, 'the move-out');
      sub.unsubscribe();
      await within(shows(own, 0), 30_000, 'the unsubscribe');
      await server.db.delete(members).where(eq(members.userId, 'alice'));
      console.log(
        `[run ${run + 1}] subscribe ${formatMs(subscribeMs.at(-1)!)}, move-in ${formatMs(moveInMs.at(-1)!)}`,
      );
    }
  } finally {
    await sync.stop();
    await db.close();
    await server.close({ timeoutMs: 5000 });
    await instance?.close();
    if (url) {
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${namespace}" CASCADE`);
      await admin.end();
    }
  }
  const sub = median(subscribeMs);
  const move = median(moveInMs);
  const outcomes: Outcome[] = [
    {
      measurement: `move-in: membership insert → live query shows ${todoCount} todos`,
      result: formatMs(move),
      baseline: `subscribe to the same rows ${formatMs(sub)}`,
      ratio: `${(move / sub).toFixed(2)}x`,
      // The refresh sends every list of hers again: twice the rows of the baseline.
      target: '<= 3x',
      met: move <= 3 * sub,
    },
  ];
  console.log(`\n${formatOutcomes(outcomes)}`);
  if (outcomes.some((o) => o.met === false)) process.exitCode = 1;
}

await main();
