import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { asc, type Database, is, openDatabase, real, schema, table, text, uuid } from '../../src/index.js';
import {
  type RejectedEvent,
  RowApplyError,
  type SyncClient,
  SyncConnectionError,
  syncClient,
} from '../../src/sync/client/index.js';
import type { LogEntry } from '../../src/sync/server/index.js';
import { asyncSqlite } from '../support/async-sqlite.js';
import { type ClientDriverKind, driverPairs, within } from '../support/sync-fixture.js';
import { startTestServer, type TestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * No single change may stop a client's sync. A change its database refuses is skipped and
 * reported (an `error` event naming the table, the key and the cause), the client fetches the
 * server's version of the row, and everything after it applies; an insert that lacks columns never
 * creates a half row, the client fetches the row whole; a batch the server fails to apply for a
 * reason of its own is pushed again after a backoff while downloads go on. The schema is an
 * ordinary one: NOT NULL columns without defaults and a unique constraint.
 */

const people = table('people', {
  id: uuid().primaryKey(),
  email: text().notNull().unique(),
  name: text().notNull(),
  score: real(),
});
const peopleSchema = schema({ people }, { version: 1 });
type PeopleDb = Database<typeof peopleSchema>;

const K1 = '00000000-0000-4000-8000-000000000001';
const K2 = '00000000-0000-4000-8000-000000000002';
const K3 = '00000000-0000-4000-8000-000000000003';

interface Client {
  db: PeopleDb;
  sync: SyncClient;
  errors: Error[];
  rejected: RejectedEvent[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function client(
  clientDriver: ClientDriverKind,
  t: TestServer<typeof peopleSchema>,
  user: string,
): Promise<Client> {
  const db = await openDatabase(peopleSchema, clientDriver === 'async' ? asyncSqlite() : sqlite());
  const sync = syncClient(db, {
    url: t.url,
    token: await t.token(user),
    backoff: { initialMs: 10, maxMs: 200 },
  });
  const errors: Error[] = [];
  const rejected: RejectedEvent[] = [];
  sync.on('error', (error) => {
    if (!is(error, SyncConnectionError)) errors.push(error);
  });
  sync.on('rejected', (event) => rejected.push(event));
  cleanups.push(async () => {
    await sync.stop();
    await db.close();
  });
  return { db, sync, errors, rejected };
}

/** Runs several statements at once, past the sync server (PGlite takes them through exec). */
async function script(t: TestServer<typeof peopleSchema>, text: string): Promise<void> {
  if (t.server.db.driver.name === 'pglite') {
    await (t.server.db.driver as unknown as { handle: { exec(sql: string): Promise<unknown> } }).handle.exec(
      text,
    );
  } else {
    await t.external(text);
  }
}

function everyone(db: Database<typeof peopleSchema>) {
  return db.select().from(people).orderBy(asc(people.id));
}

async function settle(clients: readonly Client[]): Promise<void> {
  for (const c of clients) await within(c.sync.flush(), 15_000, 'a client to flush its outbox');
  for (const c of clients) await within(c.sync.caughtUp(), 15_000, 'a client to catch up');
}

for (const [driver, clientDriver] of driverPairs) {
  describe(`no poison message [${driver}, ${clientDriver} clients]`, () => {
    it.for(['changes', 'snapshot'] as const)(
      'a remote row that breaks a local unique constraint is skipped, reported, and fetched once it fits (in %s)',
      async (path) => {
        const t = await startTestServer(peopleSchema, { driver });
        const a = await client(clientDriver, t, 'u1');
        const b = await client(clientDriver, t, 'u2');
        await b.sync.start();
        if (path === 'changes') {
          // A has synced before: B's row reaches it as a change. Otherwise in its first snapshot.
          await a.sync.start();
          await within(a.sync.caughtUp(), 10_000, 'A to catch up');
          await a.sync.stop();
        }
        // A, offline, takes an email; B takes it too and reaches the server first.
        await a.db.insert(people).values({ id: K1, email: 'ann@example.com', name: 'Ann (A)' });
        await b.db.insert(people).values({ id: K2, email: 'ann@example.com', name: 'Ann (B)' });
        await b.db.insert(people).values({ id: K3, email: 'bob@example.com', name: 'Bob' });
        await within(b.sync.flush(), 10_000, 'B to flush');
        // Back online, A gets B's row before its own push is refused: its database refuses B's row
        // (A's pending row holds the email) until the server's rejection removes A's row.
        await a.sync.start();
        await settle([a, b]);
        await waitFor(async () => (await everyone(a.db)).length === 2, 10_000, "A to hold B's rows");
        const server = await everyone(t.server.db);
        expect(server.map((p) => p.id)).toEqual([K2, K3]);
        expect(await everyone(a.db)).toEqual(server);
        expect(await everyone(b.db)).toEqual(server);
        expect(a.rejected.map((r) => r.mutationId)).toHaveLength(1);
        const refused = a.errors.filter((e) => is(e, RowApplyError)) as RowApplyError[];
        expect(refused.length).toBeGreaterThan(0);
        expect(refused[0].table).toBe('people');
        expect(refused[0].pk).toEqual({ id: K2 });
        expect(refused[0].message).toMatch(/people .*unique/i);

        // Sync goes on afterwards, both ways.
        await a.db.insert(people).values({ id: K1, email: 'ann2@example.com', name: 'Ann again' });
        await settle([a, b]);
        expect(await everyone(b.db)).toEqual(await everyone(t.server.db));
        expect(await everyone(b.db)).toHaveLength(3);
      },
    );

    it('an insert logged without every column is never written half: the client fetches the row', async () => {
      const t = await startTestServer(peopleSchema, { driver });
      const a = await client(clientDriver, t, 'u1');
      await a.sync.start();
      await within(a.sync.caughtUp(), 10_000, 'A to catch up');
      // A row written past capture, and a log entry for it that lacks its NOT NULL columns (as an
      // entry written before a column was added, or by a broken trigger, would).
      await script(
        t,
        `
        BEGIN;
        SET LOCAL session_replication_role = replica;
        INSERT INTO people (id, email, name) VALUES ('${K1}', 'cy@example.com', 'Cy');
        SET LOCAL session_replication_role = origin;
        INSERT INTO _syncline_changes (table_name, op, pk, "row", hlc)
          VALUES ('people', 'I', '{"id": "${K1}"}', '{"id": "${K1}"}', _syncline_db_stamp());
        COMMIT;
        SELECT pg_notify('syncline_changes', '');`,
      );
      // A later, ordinary write arrives after it: nothing was stuck behind the partial insert.
      await t.server.db.insert(people).values({ id: K2, email: 'di@example.com', name: 'Di' });
      await waitFor(async () => (await everyone(a.db)).length === 2, 10_000, 'A to hold both rows');
      expect(await everyone(a.db)).toEqual(await everyone(t.server.db));
      expect(a.errors).toEqual([]);
    });

    it("a backend's value a client cannot hold (a real NaN) is reported by the client, and the stream goes on", async () => {
      const t = await startTestServer(peopleSchema, { driver });
      const a = await client(clientDriver, t, 'u1');
      await a.sync.start();
      await within(a.sync.caughtUp(), 10_000, 'A to catch up');
      await script(
        t,
        `INSERT INTO people (id, email, name, score) VALUES ('${K1}', 'nan@example.com', 'Nan', 'NaN')`,
      );
      await t.server.db.insert(people).values({ id: K2, email: 'di@example.com', name: 'Di', score: 1.5 });
      await waitFor(
        async () => (await everyone(a.db)).some((p) => p.id === K2),
        10_000,
        'the row after it to reach A',
      );
      await waitFor(() => a.errors.length > 0, 10_000, 'A to report the row it cannot have');
      const [error] = a.errors as RowApplyError[];
      expect(is(error, RowApplyError)).toBe(true);
      expect([error.table, error.pk]).toEqual(['people', { id: K1 }]);
      expect(error.message).toMatch(/the server could not send score/);
      expect((await everyone(a.db)).map((p) => p.id)).toEqual([K2]);
    });

    it('a batch the server fails to apply is pushed again after a backoff, reported on both sides, while downloads go on', async () => {
      const entries: LogEntry[] = [];
      const t = await startTestServer(peopleSchema, {
        driver,
        log: { level: 'error', sink: (entry) => entries.push(entry) },
      });
      const a = await client(clientDriver, t, 'u1');
      const b = await client(clientDriver, t, 'u2');
      await Promise.all([a.sync.start(), b.sync.start()]);
      // The server's database fails A's writes for a while (a failure of the server, not a rule).
      await script(
        t,
        `
        CREATE TABLE outage (on_ boolean NOT NULL);
        INSERT INTO outage VALUES (true);
        CREATE FUNCTION people_outage() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF (SELECT on_ FROM outage) AND current_setting('syncline.origin', true) <> '' THEN
            RAISE EXCEPTION 'disk on fire' USING ERRCODE = '58030';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER people_outage BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION people_outage();`,
      );
      await a.db.insert(people).values({ id: K1, email: 'ann@example.com', name: 'Ann' });
      await waitFor(() => a.errors.length >= 2, 10_000, 'A to see its push fail twice');
      expect(a.errors[0].message).toMatch(/push_failed.*batch 1/);
      expect(a.sync.status).toBe('online');
      expect(entries.some((e) => e.event === 'push.failed' && /disk on fire/.test(String(e.message)))).toBe(
        true,
      );
      // Downloads go on meanwhile: a backend write reaches A.
      await t.server.db.insert(people).values({ id: K2, email: 'bo@example.com', name: 'Bo' });
      await waitFor(
        async () => (await everyone(a.db)).some((p) => p.id === K2),
        10_000,
        "the backend's row to reach A",
      );
      // The outage ends: A's batch goes through on a later try, once.
      await t.external('UPDATE outage SET on_ = false');
      await settle([a, b]);
      expect((await everyone(t.server.db)).map((p) => p.id)).toEqual([K1, K2]);
      expect(await everyone(b.db)).toEqual(await everyone(t.server.db));
      expect(a.rejected).toEqual([]);
    });
  });
}
