import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { type Database, eq, is, openDatabase } from '../../src/index.js';
import {
  type RejectedEvent,
  type SyncClient,
  SyncConnectionError,
  syncClient,
} from '../../src/sync/client/index.js';
import { ChangeLogReader } from '../../src/sync/server/change-log-reader.js';
import { BalancedServers, notes, notesSchema } from '../support/balanced-servers.js';
import { requirements } from '../support/requirements.js';
import { within } from '../support/sync-fixture.js';
import { waitFor } from '../support/wait.js';

/**
 * Several sync servers, deployed as docs/operations.md says: three `syncline serve` processes on
 * one PostgreSQL behind HAProxy, 20 clients spread over them by the balancer, writes from the
 * clients and from a backend. Every row has one writer (its client, or the backend), so the
 * server's rows must equal what the writers wrote last: nothing lost. A trigger of the test's own
 * copies every change the log records, so a batch applied twice (two transactions logging one
 * client's mutation) or a write captured twice shows: nothing doubled. Then the faults of a
 * deployment: one server SIGKILLed, a server started later, a rolling restart under load, and all
 * three restarted at once on an aged change log, so they prune it (and install capture) together.
 */

type Note = typeof notes.$inferSelect;

const CLIENTS = 20;
const SERVERS = 3;

interface Replica {
  readonly name: string;
  readonly db: Database<typeof notesSchema>;
  sync: SyncClient;
  readonly errors: Error[];
  readonly rejected: RejectedEvent[];
  /** This client's own rows, as it last wrote them. */
  readonly mine: Map<string, Note>;
}

let deployment: BalancedServers;
let backend: pg.Client;
let replicas: Replica[] = [];
/** The backend's rows, as it last wrote them. */
const backendRows = new Map<string, Note>();
let backendStatements = 0;

function startSync(replica: Replica, url: string): SyncClient {
  const sync = syncClient(replica.db, {
    url,
    token: () => deployment.token(`user-${replica.name}`),
    backoff: { initialMs: 20, maxMs: 250 },
  });
  sync.on('error', (error) => {
    if (!is(error, SyncConnectionError)) replica.errors.push(error);
  });
  sync.on('rejected', (event) => replica.rejected.push(event));
  replica.sync = sync;
  return sync;
}

async function openReplica(name: string, url = deployment.url): Promise<Replica> {
  const db = await openDatabase(notesSchema, sqlite());
  const replica = { name, db, errors: [], rejected: [], mine: new Map() } as unknown as Replica;
  await startSync(replica, url).start();
  return replica;
}

/** One write by a client to a row of its own: an insert, an update, or now and then a delete. */
async function clientWrite(replica: Replica, k: number): Promise<void> {
  const own = [...replica.mine.values()];
  if (own.length < 3 || k % 4 === 0) {
    const row: Note = { id: randomUUID(), owner: replica.name, n: 0, body: `${replica.name} #${k}` };
    await replica.db.insert(notes).values(row);
    replica.mine.set(row.id, row);
  } else if (k % 7 === 0) {
    const gone = own[k % own.length]!;
    await replica.db.delete(notes).where(eqId(gone.id));
    replica.mine.delete(gone.id);
  } else {
    const row = own[k % own.length]!;
    const next = { ...row, n: row.n + 1, body: `${replica.name} #${k}` };
    await replica.db.update(notes).set({ n: next.n, body: next.body }).where(eqId(row.id));
    replica.mine.set(row.id, next);
  }
}

function eqId(id: string) {
  return eq(notes.id, id);
}

/** One write by the backend, straight to PostgreSQL past the servers. */
async function backendWrite(k: number): Promise<void> {
  const own = [...backendRows.values()];
  if (own.length < 3 || k % 3 === 0) {
    const row: Note = { id: randomUUID(), owner: 'backend', n: 0, body: `backend #${k}` };
    await backend.query('INSERT INTO notes (id, owner, n, body) VALUES ($1, $2, $3, $4)', [
      row.id,
      row.owner,
      row.n,
      row.body,
    ]);
    backendRows.set(row.id, row);
  } else {
    const row = own[k % own.length]!;
    const next = { ...row, n: row.n + 1, body: `backend #${k}` };
    await backend.query('UPDATE notes SET n = $1, body = $2 WHERE id = $3', [next.n, next.body, row.id]);
    backendRows.set(row.id, next);
  }
  backendStatements++;
}

/**
 * Writes from every client and the backend until `until` resolves (or each writer made `max`
 * writes), one write per writer every `pauseMs`.
 */
async function writeUnderLoad(until: Promise<unknown>, pauseMs: number, max = 200): Promise<number> {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  let writes = 0;
  const writer = async (write: (k: number) => Promise<void>) => {
    for (let k = 0; k < max && !done; k++) {
      await write(k);
      writes++;
      await sleep(pauseMs);
    }
  };
  await Promise.all([...replicas.map((r) => writer((k) => clientWrite(r, k))), writer(backendWrite)]);
  await until;
  return writes;
}

/** Rows in id order, as plain objects with the columns of `notes`. */
function sorted(rows: readonly Note[]): Note[] {
  return rows
    .map(({ id, owner, n, body }) => ({ id, owner, n, body }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

async function serverRows(): Promise<Note[]> {
  return sorted((await backend.query('SELECT id, owner, n, body FROM notes')).rows as Note[]);
}

/**
 * Every client flushed and caught up, holding exactly the server's rows, which are exactly what
 * the writers last wrote; no batch applied twice, no write captured twice; no client errors or
 * rejections, no server error in any log.
 */
async function expectConverged(all: readonly Replica[] = replicas): Promise<void> {
  await Promise.all(all.map((r) => within(r.sync.flush(), 30_000, `client ${r.name} to flush`)));
  await Promise.all(all.map((r) => within(r.sync.caughtUp(), 30_000, `client ${r.name} to catch up`)));
  const expected = sorted([...backendRows.values(), ...replicas.flatMap((r) => [...r.mine.values()])]);
  const onServer = await serverRows();
  expect(onServer, 'the server holds what the writers wrote last').toEqual(expected);
  expect(deployment.currentErrors(), 'errors in the servers logs').toEqual([]);
  for (const r of all) {
    expect(sorted(await r.db.select().from(notes)), `client ${r.name} equals the server`).toEqual(onServer);
    expect(
      r.errors.map((e) => e.message),
      `client ${r.name} reported errors`,
    ).toEqual([]);
    expect(r.rejected, `client ${r.name} had writes rejected`).toEqual([]);
  }
  const doubled = await backend.query(
    `SELECT origin, mutation_id, count(DISTINCT txid)::int AS transactions FROM audit_changes
      WHERE origin IS NOT NULL GROUP BY origin, mutation_id HAVING count(DISTINCT txid) > 1`,
  );
  expect(doubled.rows, 'batches applied in more than one transaction').toEqual([]);
  const [{ direct }] = (
    await backend.query('SELECT count(*)::int AS direct FROM audit_changes WHERE origin IS NULL')
  ).rows as [{ direct: number }];
  expect(direct, 'each backend write logged once').toBe(backendStatements);
}

const connectionsOf = (servers: { connections: number }[]) =>
  servers.reduce((sum, s) => sum + s.connections, 0);

describe.skipIf(!requirements.postgres.present || !requirements.haproxy.present)(
  'three syncline serve processes on one PostgreSQL behind HAProxy',
  () => {
    beforeAll(async () => {
      // Started at the same moment on an empty schema: their migrations and capture installs race.
      deployment = await BalancedServers.start(SERVERS, 'several_servers');
      backend = await deployment.connect();
      // The test's own copy of every logged change, kept whatever is pruned from the log.
      await backend.query(`
        CREATE TABLE audit_changes (txid xid8, origin text, mutation_id bigint, table_name text, pk jsonb);
        CREATE FUNCTION audit_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
          INSERT INTO audit_changes VALUES (NEW.txid, NEW.origin, NEW.mutation_id, NEW.table_name, NEW.pk);
          RETURN NULL;
        END $$;
        CREATE TRIGGER audit_change AFTER INSERT ON _syncline_changes FOR EACH ROW EXECUTE FUNCTION audit_change();`);
    }, 60_000);

    afterAll(async () => {
      await Promise.allSettled(replicas.map((r) => r.sync.stop()));
      await Promise.allSettled(replicas.map((r) => r.db.close()));
      await backend?.end();
      await deployment?.close();
    });

    it('installs capture once when three servers start at the same moment', async () => {
      const [{ installs }] = (
        await backend.query(
          `SELECT count(*)::int AS installs FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relname = 'notes' AND c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal`,
        )
      ).rows as [{ installs: number }];
      expect(installs).toBeGreaterThan(0);
      await backendWrite(0);
      await expectConverged([]);
    }, 30_000);

    it('spreads 20 clients over the servers, and every replica converges', async () => {
      replicas = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => openReplica(`c${i}`)));
      const servers = await deployment.waitForBalancer(
        (s) => connectionsOf(s) === CLIENTS,
        `${CLIENTS} connections`,
      );
      for (const s of servers) expect(s.connections, `clients on ${s.name}`).toBeGreaterThan(0);
      await Promise.all([...replicas.map((r) => clientWrite(r, 0)), backendWrite(1)]);
      await writeUnderLoad(Promise.resolve(), 0, 5);
      await expectConverged();
    }, 60_000);

    it('moves the clients of a SIGKILLed server to the others, nothing lost or doubled', async () => {
      const victim = (await deployment.balancer.servers()).findIndex((s) => s.connections > 0);
      const kill = (async () => {
        await sleep(300);
        await deployment.stopServer(victim, 'SIGKILL');
        await deployment.waitForBalancer(
          (s) =>
            s[victim]!.status.startsWith('DOWN') &&
            s[victim]!.connections === 0 &&
            connectionsOf(s) === CLIENTS,
          `the clients of s${victim + 1} on the other servers`,
        );
        await sleep(300);
      })();
      await writeUnderLoad(kill, 50);
      await expectConverged();
    }, 60_000);

    it('serves from a server started later: it catches up with what it missed', async () => {
      const late = [0, 1, 2].find((i) => !deployment.isRunning(i))!;
      await writeUnderLoad(sleep(300), 30);
      await deployment.startServer(late);
      await deployment.waitForBalancer((s) => s[late]!.status === 'UP', `s${late + 1} up`);
      // A client straight on the late server: its snapshot holds everything, and changes follow.
      const direct = await openReplica('direct', deployment.directUrl(late));
      try {
        await backendWrite(1000);
        await within(direct.sync.caughtUp(), 20_000, 'the client of the late server to catch up');
        expect(sorted(await direct.db.select().from(notes))).toEqual(await serverRows());
      } finally {
        await direct.sync.stop();
        await direct.db.close();
      }
      await expectConverged();
    }, 60_000);

    it('keeps every write through a rolling restart of all three under load', async () => {
      const rolling = (async () => {
        for (let i = 0; i < SERVERS; i++) {
          await deployment.stopServer(i, 'SIGTERM');
          await deployment.waitForBalancer((s) => s[i]!.connections === 0, `s${i + 1} drained`);
          await deployment.startServer(i);
          await deployment.waitForBalancer((s) => s[i]!.status === 'UP', `s${i + 1} up again`);
        }
        await deployment.waitForBalancer((s) => connectionsOf(s) === CLIENTS, 'every client back');
      })();
      await writeUnderLoad(rolling, 200);
      await expectConverged();
    }, 120_000);

    it('prunes the change log from three servers at once, and clients resume or snapshot', async () => {
      // One client is away: its cursor will be older than what the log keeps.
      const away = replicas[0]!;
      await away.sync.stop();
      await writeUnderLoad(sleep(200), 50);
      // Every change is made 8 days old, past the week the servers keep, and all three restart at
      // once: each installs capture and prunes as it starts, at the same moment.
      // Quiet first: a push still in flight could log a change the aging misses, ticked before one
      // it ages, and the prune's cut (the first tick of a change younger than a week) keeps the rest.
      await Promise.all(
        replicas
          .filter((r) => r !== away)
          .map((r) => within(r.sync.flush(), 30_000, `client ${r.name} to flush`)),
      );
      await backend.query(`UPDATE _syncline_changes SET changed_at = changed_at - interval '8 days'`);
      await Promise.all([0, 1, 2].map((i) => deployment.stopServer(i, 'SIGKILL')));
      await Promise.all([0, 1, 2].map((i) => deployment.startServer(i)));
      const aged = async () =>
        (
          await backend.query(
            `SELECT count(*)::int AS n FROM _syncline_changes WHERE changed_at < now() - interval '7 days'`,
          )
        ).rows[0].n as number;
      await waitFor(async () => (await aged()) === 0, 20_000, 'the aged changes pruned').catch(
        async (error) => {
          // What is left, to explain it: ticked or not, and the first fresh tick (the prune's cut).
          const { rows } = await backend.query(
            `SELECT count(*)::int AS aged, count(t.tick)::int AS ticked, min(t.tick)::text AS first_aged_tick,
                  (SELECT min(t2.tick)::text FROM _syncline_ticks t2 JOIN _syncline_changes c2 ON c2.id = t2.change_id
                    WHERE c2.changed_at >= now() - interval '7 days') AS first_fresh_tick
             FROM _syncline_changes c LEFT JOIN _syncline_ticks t ON t.change_id = c.id
            WHERE c.changed_at < now() - interval '7 days'`,
          );
          throw new Error(
            `${error.message}: ${JSON.stringify(rows[0])}; ${deployment.currentErrors().join('\n')}`,
          );
        },
      );
      await deployment.waitForBalancer((s) => connectionsOf(s) === CLIENTS - 1, 'the clients back');
      // Then pruners on three connections at once prune everything ticked, in small pages, while
      // the servers stream and clients write: a client whose next changes are gone snapshots.
      const pruners = await Promise.all(
        [0, 1, 2].map(() =>
          openDatabase(
            notesSchema,
            postgres({ connectionString: process.env.DATABASE_URL, schema: deployment.namespace }),
          ),
        ),
      );
      try {
        const pruning = (async () => {
          for (let round = 0; round < 4; round++) {
            await sleep(150);
            await Promise.all(pruners.map((db) => new ChangeLogReader(db).prune(new Date(), 10)));
          }
        })();
        await writeUnderLoad(pruning, 50);
      } finally {
        await Promise.all(pruners.map((db) => db.close()));
      }
      await away.sync.start();
      await expectConverged();
    }, 90_000);
  },
);
