import pg from 'pg';
import { expect, it } from 'vitest';
import {
  type Database,
  eq,
  integer,
  localTable,
  primaryKey,
  schema,
  sql,
  table,
  text,
  UsageError,
} from '../../src/index.js';
import { CHANGES_CHANNEL, installCapture } from '../../src/sync/server/capture.js';
import { type CapturedChange, ChangeLogReader } from '../../src/sync/server/change-log-reader.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';
import { waitFor } from '../support/wait.js';

/**
 * Server-side capture (docs/design.md section 4): triggers log every write, whoever makes it, and the
 * reader numbers the log in commit order with gap-free ticks, never skipping a transaction that
 * commits after a later one, never repeating one, across reads, readers and restarts.
 */

const notes = table('notes', {
  id: integer().primaryKey(),
  body: text().notNull(),
});

const memberships = table(
  'memberships',
  {
    groupId: integer('group_id').notNull(),
    userId: text('user_id').notNull(),
    role: text().notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.userId] })],
);

const drafts = localTable('drafts', {
  id: integer().primaryKey(),
  body: text(),
});

const captureSchema = schema({ notes, memberships, drafts });
type Db = Database<typeof captureSchema>;

const summary = (changes: CapturedChange[]) => changes.map((c) => [c.table, c.op, c.pk]);

function expectConsecutive(changes: CapturedChange[], after: bigint): void {
  expect(changes.map((c) => c.tick)).toEqual(changes.map((_, i) => after + BigInt(i + 1)));
}

const postgresDrivers = testDrivers.filter((d) => d.dialect === 'postgres');

dialectSuite(
  'change log',
  (env) => {
    async function openCaptured(): Promise<{ db: Db; reader: ChangeLogReader }> {
      const db = await env.open(captureSchema);
      await installCapture(db, captureSchema.tableList);
      return { db, reader: new ChangeLogReader(db) };
    }

    it('captures insert, update and delete made through syncline', async () => {
      const { db, reader } = await openCaptured();
      await db.insert(notes).values({ id: 1, body: 'first' });
      await db.update(notes).set({ body: 'second' }).where(eq(notes.id, 1));
      await db.delete(notes).where(eq(notes.id, 1));
      const batch = await reader.readNew();
      expect(batch.from).toBe(0n);
      expect(batch.to).toBe(3n);
      expect(summary(batch.changes)).toEqual([
        ['notes', 'insert', { id: 1 }],
        ['notes', 'update', { id: 1 }],
        ['notes', 'delete', { id: 1 }],
      ]);
      expect(batch.changes.map((c) => c.row)).toEqual([
        { id: 1, body: 'first' },
        { id: 1, body: 'second' },
        { id: 1, body: 'second' },
      ]);
      expectConsecutive(batch.changes, 0n);
      expect(batch.changes[0]!.changedAt).toBeInstanceOf(Date);
      expect(batch.changes[0]!.oldPk).toBeUndefined();
    });

    it('captures raw SQL writes, composite keys and a changed primary key; skips local tables', async () => {
      const { db, reader } = await openCaptured();
      await db.execute(sql`insert into memberships (group_id, user_id, role) values (7, 'ann', 'owner')`);
      await db.execute(sql`update memberships set user_id = 'bob' where group_id = 7`);
      await db.execute(sql`insert into drafts (id, body) values (1, 'stays local')`);
      await db.execute(sql`delete from memberships`);
      const { changes } = await reader.readNew();
      expect(summary(changes)).toEqual([
        ['memberships', 'insert', { group_id: 7, user_id: 'ann' }],
        ['memberships', 'update', { group_id: 7, user_id: 'bob' }],
        ['memberships', 'delete', { group_id: 7, user_id: 'bob' }],
      ]);
      expect(changes[1]!.oldPk).toEqual({ group_id: 7, user_id: 'ann' });
      expect(changes[2]!.row).toEqual({ group_id: 7, user_id: 'bob', role: 'owner' });
    });

    it('gives gap-free increasing ticks across reads, and an empty batch when nothing changed', async () => {
      const { db, reader } = await openCaptured();
      const seen: CapturedChange[] = [];
      for (let round = 0; round < 4; round++) {
        await db.transaction(async (tx) => {
          for (let i = 0; i < round + 1; i++)
            await tx.insert(notes).values({ id: round * 10 + i, body: 'x' });
        });
        const batch = await reader.readNew();
        expect(batch.from).toBe(BigInt(seen.length));
        expect(batch.changes.length).toBe(round + 1);
        seen.push(...batch.changes);
      }
      expectConsecutive(seen, 0n);
      const empty = await reader.readNew();
      expect(empty).toEqual({ from: 10n, to: 10n, changes: [] });
      expect((await reader.keptRange()).last).toBe(10n);
    });

    it('reads transactions in commit order, in one read or across reads (sequential)', async () => {
      const { db, reader } = await openCaptured();
      await db.transaction(async (tx) => {
        await tx.insert(notes).values({ id: 1, body: 'a' });
        await tx.insert(notes).values({ id: 2, body: 'a' });
      });
      await db.insert(notes).values({ id: 3, body: 'b' });
      const first = await reader.readNew();
      expect(first.changes.map((c) => c.pk.id)).toEqual([1, 2, 3]);
      expect(first.changes[0]!.txid).toBe(first.changes[1]!.txid);
      expect(first.changes[2]!.txid > first.changes[0]!.txid).toBe(true);
      await db.insert(notes).values({ id: 4, body: 'c' });
      const second = await reader.readNew();
      expect(second.changes.map((c) => [c.tick, c.pk.id])).toEqual([[4n, 4]]);
    });

    it('a restarted reader continues from the persisted state', async () => {
      const { db, reader } = await openCaptured();
      await db.insert(notes).values({ id: 1, body: 'before' });
      expect((await reader.readNew()).to).toBe(1n);
      await db.insert(notes).values({ id: 2, body: 'while down' });
      const restarted = new ChangeLogReader(db);
      const batch = await restarted.readNew();
      expect(batch.from).toBe(1n);
      expect(batch.changes.map((c) => [c.tick, c.pk.id])).toEqual([[2n, 2]]);
      expect((await reader.readNew()).changes).toEqual([]);
    });

    it('readFrom(cursor) returns exactly the ticked changes after the cursor', async () => {
      const { db, reader } = await openCaptured();
      await db.insert(notes).values([1, 2, 3, 4, 5].map((id) => ({ id, body: `n${id}` })));
      await db.insert(notes).values({ id: 6, body: 'not yet ticked' });
      const { changes } = await reader.readNew();
      await db.insert(notes).values({ id: 7, body: 'written after the read' });
      expect((await reader.readFrom(0n)).map((c) => c.pk.id)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(await reader.readFrom(2n)).toEqual(changes.slice(2));
      expect((await reader.readFrom(2n, 2)).map((c) => c.tick)).toEqual([3n, 4n]);
      expect(await reader.readFrom(6n)).toEqual([]);
      await expect(reader.readFrom(-1n)).rejects.toThrow(UsageError);
    });

    it('install is idempotent: triggers once per synced table, none on local tables', async () => {
      const { db, reader } = await openCaptured();
      await installCapture(db, captureSchema.tableList);
      await installCapture(db, captureSchema.tableList);
      const triggers = await db.execute<{ table: string; n: number }>(
        sql`select event_object_table as table, count(distinct trigger_name)::int as n
              from information_schema.triggers where trigger_schema = current_schema()
             group by event_object_table order by 1`,
      );
      expect(triggers).toEqual([
        { table: 'memberships', n: 5 },
        { table: 'notes', n: 5 },
      ]);
      await db.insert(notes).values({ id: 1, body: 'once' });
      expect((await reader.readNew()).changes.length).toBe(1);
      await installCapture(db, captureSchema.tableList);
      expect((await reader.keptRange()).last).toBe(1n);
    });

    it('an install already in place is skipped, but a lost trigger is put back', async () => {
      const { db, reader } = await openCaptured();
      await db.execute(sql`comment on table _syncline_changes is 'edited by hand'`);
      await installCapture(db, captureSchema.tableList);
      const [{ mark }] = await db.execute<{ mark: string }>(
        sql`select obj_description('_syncline_changes'::regclass, 'pg_class') as mark`,
      );
      expect(mark).toMatch(/^syncline capture [0-9a-f]{16}$/);
      await db.execute(sql`drop trigger _syncline_capture on notes`);
      await installCapture(db, captureSchema.tableList);
      await db.insert(notes).values({ id: 1, body: 'a' });
      await db.update(notes).set({ body: 'b' }).where(eq(notes.id, 1));
      expect((await reader.readNew()).changes.map((c) => c.op)).toEqual(['insert', 'update']);
    });

    it('notifies on the changes channel when a captured table is written', async () => {
      const { db } = await openCaptured();
      let notified = 0;
      const unlisten = await db.driver.listen!(CHANGES_CHANNEL, () => notified++);
      try {
        await db.insert(notes).values({ id: 1, body: 'ping' });
        await waitFor(() => notified > 0, 5000, 'the change notification');
      } finally {
        await unlisten();
      }
    });

    it('logs the changed columns of an update with their old values, and skips updates that change nothing', async () => {
      const { db, reader } = await openCaptured();
      await db.insert(memberships).values({ groupId: 1, userId: 'ann', role: 'owner' });
      await db.update(memberships).set({ role: 'owner' }).where(eq(memberships.groupId, 1));
      await db.update(memberships).set({ role: 'viewer' }).where(eq(memberships.groupId, 1));
      const { changes } = await reader.readNew();
      expect(changes.map((c) => [c.op, c.oldValues])).toEqual([
        ['insert', undefined],
        ['update', { role: 'owner' }],
      ]);
      expect(changes[1]!.row).toEqual({ group_id: 1, user_id: 'ann', role: 'viewer' });
    });

    it("stamps direct writes from PostgreSQL's clock, in the log and in _syncline_stamps", async () => {
      const { db, reader } = await openCaptured();
      const stamps = () =>
        db.execute<{
          pk: unknown;
          cols: Record<string, string>;
          created: string | null;
          deleted: string | null;
          image: Record<string, unknown> | null;
        }>(sql`select pk, cols, created, deleted, image from _syncline_stamps order by pk::text`);
      const [{ stamp }] = await db.execute<{ stamp: string }>(sql`select _syncline_db_stamp() as stamp`);
      expect(stamp).toMatch(/^\d{13}-00000-postgres$/);
      await db.insert(memberships).values({ groupId: 7, userId: 'ann', role: 'owner' });
      const [inserted] = await stamps();
      expect(inserted!.cols).toEqual({
        group_id: inserted!.created,
        user_id: inserted!.created,
        role: inserted!.created,
      });
      await db.update(memberships).set({ role: 'viewer' }).where(eq(memberships.groupId, 7));
      const [updated] = await stamps();
      expect(updated!.cols.group_id).toBe(inserted!.created);
      expect(updated!.cols.role).toMatch(/^\d{13}-00000-postgres$/);
      // A new key is a new row: the old key gets a tombstone.
      await db.update(memberships).set({ userId: 'bob' }).where(eq(memberships.groupId, 7));
      await db.delete(memberships).where(eq(memberships.groupId, 7));
      const [ann, bob] = await stamps();
      expect([ann!.pk, ann!.deleted !== null, bob!.pk, bob!.deleted !== null]).toEqual([
        { group_id: 7, user_id: 'ann' },
        true,
        { group_id: 7, user_id: 'bob' },
        true,
      ]);
      // Each deleted key keeps the row's image, as the log holds the row.
      expect([ann!.image, bob!.image]).toEqual([
        { group_id: 7, user_id: 'ann', role: 'viewer' },
        { group_id: 7, user_id: 'bob', role: 'viewer' },
      ]);
      await db.insert(memberships).values({ groupId: 7, userId: 'bob', role: 'back' });
      const [, recreated] = await stamps();
      expect([recreated!.deleted, recreated!.image]).toEqual([null, null]);
      const { changes } = await reader.readNew();
      expect(
        changes.every(
          (c) => /-postgres$/.test(c.hlc) && c.origin === undefined && c.mutationId === undefined,
        ),
      ).toBe(true);
    });

    it('upgrades a change log installed by an older version, keeping its rows', async () => {
      const db = await env.open(captureSchema);
      await db.execute(sql`create table _syncline_changes (
        id bigserial primary key, txid xid8 not null default pg_current_xact_id(), table_name text not null,
        op char(1) not null, pk jsonb not null, old_pk jsonb, "row" jsonb not null,
        changed_at timestamptz not null default now())`);
      await db.execute(
        sql`insert into _syncline_changes (table_name, op, pk, "row") values ('notes', 'I', '{"id": 1}', '{"id": 1, "body": "old"}')`,
      );
      await installCapture(db, captureSchema.tableList);
      await db.insert(notes).values({ id: 2, body: 'new' });
      const { changes } = await new ChangeLogReader(db).readNew();
      expect(changes.map((c) => [c.pk.id, c.hlc.endsWith('-postgres'), c.row.body])).toEqual([
        [1, true, 'old'],
        [2, true, 'new'],
      ]);
      expect(changes[0]!.hlc < changes[1]!.hlc).toBe(true);
    });

    it('adds the image column to the stamps of an older version, keeping its rows', async () => {
      const db = await env.open(captureSchema);
      await db.execute(sql`create table _syncline_stamps (table_name text not null, pk jsonb not null,
        cols jsonb not null default '{}', created text, deleted text, primary key (table_name, pk))`);
      await db.execute(
        sql`insert into _syncline_stamps (table_name, pk, deleted) values ('notes', '{"id": 1}', '0000000000001-00000-a')`,
      );
      await installCapture(db, captureSchema.tableList);
      await db.insert(notes).values({ id: 2, body: 'new' });
      await db.delete(notes).where(eq(notes.id, 2));
      const rows = await db.execute<{ pk: unknown; deleted: string; image: unknown }>(
        sql`select pk, deleted, image from _syncline_stamps order by pk::text`,
      );
      expect(rows).toEqual([
        { pk: { id: 1 }, deleted: '0000000000001-00000-a', image: null },
        { pk: { id: 2 }, deleted: expect.stringMatching(/-postgres$/), image: { id: 2, body: 'new' } },
      ]);
    });

    it('drops the unique index an older version put on the ticks, keeping the ticks', async () => {
      const db = await env.open(captureSchema);
      await installCapture(db, captureSchema.tableList);
      await db.insert(notes).values({ id: 1, body: 'ticked' });
      const reader = new ChangeLogReader(db);
      await reader.readNew();
      await db.execute(sql`alter table _syncline_ticks add unique (change_id)`);
      await db.execute(sql`comment on table _syncline_changes is 'an older install'`);
      await installCapture(db, captureSchema.tableList);
      const uniques = await db.execute<{ n: number }>(
        sql`select count(*)::int as n from pg_constraint where conrelid = '_syncline_ticks'::regclass and contype = 'u'`,
      );
      expect(uniques).toEqual([{ n: 0 }]);
      expect((await reader.readFrom(0n)).map((c) => [c.tick, c.pk.id])).toEqual([[1n, 1]]);
    });

    it('refuses a reader before install', async () => {
      const db = await env.open(captureSchema);
      await expect(new ChangeLogReader(db).readNew()).rejects.toThrow(UsageError);
      await expect(new ChangeLogReader(db).readNew()).rejects.toThrow(/call installCapture\(\) first/);
    });

    it('readNew(limit) ticks every change but returns only the first page; readFrom gives the rest', async () => {
      const { db, reader } = await openCaptured();
      await db.insert(notes).values(Array.from({ length: 5 }, (_, i) => ({ id: i, body: `n${i}` })));
      const batch = await reader.readNew(2);
      expect([batch.from, batch.to]).toEqual([0n, 5n]);
      expect(batch.changes.map((c) => [c.tick, c.pk.id])).toEqual([
        [1n, 0],
        [2n, 1],
      ]);
      expect((await reader.readFrom(2n)).map((c) => [c.tick, c.pk.id])).toEqual([
        [3n, 2],
        [4n, 3],
        [5n, 4],
      ]);
      expect(await reader.readNew(0)).toEqual({ from: 5n, to: 5n, changes: [] });
    });

    if (env.driver.name === 'postgres') {
      async function connect(db: Db): Promise<pg.Client> {
        const [{ schema: current }] = await db.execute<{ schema: string }>(
          sql`select current_schema() as schema`,
        );
        const client = new pg.Client({
          connectionString: process.env.DATABASE_URL,
          options: `-c search_path="${current}"`,
        });
        await client.connect();
        return client;
      }

      it('reads a transaction that commits after a later one at the next read, never skipping it', async () => {
        const { db, reader } = await openCaptured();
        const a = await connect(db);
        const b = await connect(db);
        try {
          await a.query('BEGIN');
          await a.query(`INSERT INTO notes (id, body) VALUES (1, 'A, slow')`);
          await b.query('BEGIN');
          await b.query(`INSERT INTO notes (id, body) VALUES (2, 'B, fast')`);
          await b.query('COMMIT');
          const first = await reader.readNew();
          expect(first.changes.map((c) => [c.tick, c.pk.id])).toEqual([[1n, 2]]);
          await a.query('COMMIT');
          const second = await reader.readNew();
          expect(second.changes.map((c) => [c.tick, c.pk.id])).toEqual([[2n, 1]]);
          expect(second.changes[0]!.id < first.changes[0]!.id).toBe(true);
          expect((await reader.readNew()).changes).toEqual([]);
          expect((await reader.readFrom(0n)).map((c) => c.pk.id)).toEqual([2, 1]);
        } finally {
          await a.end();
          await b.end();
        }
      });

      it('captures a write from a session whose search_path lacks the schema', async () => {
        const { db, reader } = await openCaptured();
        const [{ schema: current }] = await db.execute<{ schema: string }>(
          sql`select current_schema() as schema`,
        );
        const other = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await other.connect();
        try {
          await other.query(`INSERT INTO "${current}".notes (id, body) VALUES (7, 'qualified')`);
          await other.query(`UPDATE "${current}".notes SET body = 'again' WHERE id = 7`);
        } finally {
          await other.end();
        }
        const { changes } = await reader.readNew();
        expect(changes.map((c) => [c.op, c.pk.id, c.row.body])).toEqual([
          ['insert', 7, 'qualified'],
          ['update', 7, 'again'],
        ]);
      });

      it('concurrent readers share one numbering: no tick twice, no change twice, none lost', async () => {
        const { db } = await openCaptured();
        const readers = [new ChangeLogReader(db), new ChangeLogReader(db)];
        const writes = Array.from({ length: 40 }, (_, i) => db.insert(notes).values({ id: i, body: 'w' }));
        const reads = Array.from({ length: 10 }, (_, i) => readers[i % 2]!.readNew());
        await Promise.all(writes);
        const batches = await Promise.all(reads);
        batches.push(await readers[0]!.readNew());
        const all = batches.flatMap((b) => b.changes).sort((x, y) => (x.tick < y.tick ? -1 : 1));
        expectConsecutive(all, 0n);
        expect(new Set(all.map((c) => c.pk.id)).size).toBe(40);
      });
    }
  },
  postgresDrivers,
);
