import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { type Database, schema, sql, table, text, uuid } from '../../src/index.js';
import { encodeHlc, HybridLogicalClock } from '../../src/sync/protocol/hlc.js';
import type { BatchJson } from '../../src/sync/protocol/messages-client.js';
import { applyPush, type PushContext } from '../../src/sync/server/apply-push.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { RuleSet, type SyncRules } from '../../src/sync/server/rules.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';

/**
 * A push of many batches is applied as one run (docs/sync-internals.md, "Runs of batches"): in one
 * transaction, rows read and written set-wise across batches, and still each batch with its own
 * mutation id, stamp, exactly-once record and verdict. One refused batch does not sink the others.
 */

const notes = table('notes', {
  id: uuid().primaryKey(),
  title: text().notNull().unique(),
  ownerId: text('owner_id').notNull(),
});

const runSchema = schema({ notes });
type Db = Database<typeof runSchema>;

const base = Date.now() - 30_000;
const at = (ms: number, node = 'client-a') => encodeHlc({ wallMs: base + ms, counter: 0, nodeId: node });

/** Only the owner writes a note. */
const ownerRules: SyncRules<typeof runSchema> = {
  notes: { read: () => true, write: (user, row) => row.ownerId === user.userId },
};

dialectSuite(
  'push runs',
  (env) => {
    async function open() {
      const db = await env.open(runSchema);
      await installCapture(db, runSchema.tableList);
      return db;
    }
    function client(db: Db, clientId = randomUUID()): PushContext {
      return {
        db,
        schema: runSchema,
        clientId,
        user: { userId: 'u1' },
        rules: new RuleSet(runSchema, ownerRules),
        clock: new HybridLogicalClock('server'),
      };
    }
    /** Batch `n` (mutation id n) inserts one note, stamped n ms after the base. */
    const insertBatch = (n: number, id: string, title: string, owner = 'u1'): BatchJson => ({
      mutationId: n,
      changes: [
        {
          table: 'notes',
          op: 'insert',
          pk: { id },
          values: { id, title, owner_id: owner },
          hlc: at(n),
        },
      ],
    });
    const logOf = async (db: Db, clientId: string) =>
      db.execute<{ id: string; hlc: string; mutation: number; txids: number }>(
        sql`SELECT pk->>'id' AS id, hlc, mutation_id::int AS mutation,
                   count(*) OVER (PARTITION BY txid)::int AS txids
              FROM _syncline_changes WHERE origin = ${clientId} ORDER BY id`,
      );
    const lastOf = async (db: Db, clientId: string) =>
      Number(
        (
          await db.execute<{ last: string }>(
            sql`SELECT last_mutation_id::text AS last FROM _syncline_clients WHERE client_id = ${clientId}`,
          )
        )[0]?.last ?? 0,
      );

    it('a run with a batch a write rule refuses in the middle: the others apply, each logged with its own id and stamp', async () => {
      const db = await open();
      const ctx = client(db);
      const ids = Array.from({ length: 200 }, () => randomUUID());
      const batches = ids.map((id, i) => insertBatch(i + 1, id, `note ${i}`, i === 99 ? 'u2' : 'u1'));
      const results = await applyPush(ctx, batches);
      expect(results.map((r) => r.mutationId)).toEqual(ids.map((_, i) => i + 1));
      const refused = results.filter((r) => r.status === 'rejected');
      expect(refused).toMatchObject([
        {
          mutationId: 100,
          reason: expect.stringContaining('write rule'),
          rows: [{ pk: { id: ids[99] }, row: null }],
        },
      ]);
      const stored = await db.select().from(notes);
      expect(stored.map((r) => r.id).sort()).toEqual(ids.filter((_, i) => i !== 99).sort());
      // Each applied batch is logged once, with its own stamp and mutation id, all in one transaction.
      const log = await logOf(db, ctx.clientId);
      const byId = new Map<string, number>(ids.map((id, i) => [id, i + 1]));
      expect(log).toHaveLength(199);
      for (const row of log) {
        const n = byId.get(row.id)!;
        expect([row.mutation, row.hlc]).toEqual([n, at(n)]);
      }
      expect(new Set(log.map((r) => r.txids))).toEqual(new Set([199]));
      expect(await lastOf(db, ctx.clientId)).toBe(200);
      // Sent again (its ack lost): answered as the first time, nothing written twice.
      const again = await applyPush(ctx, batches);
      expect(again.map((r) => [r.mutationId, r.status])).toEqual(
        results.map((r) => [r.mutationId, r.status]),
      );
      expect(again[99]).toEqual(results[99]);
      expect(await logOf(db, ctx.clientId)).toHaveLength(199);
    });

    it('a run the database refuses (a unique value taken) is applied one by one: only the batch that broke it is rejected', async () => {
      const db = await open();
      const ctx = client(db);
      await db.insert(notes).values({ id: randomUUID(), title: 'taken', ownerId: 'u9' });
      const ids = Array.from({ length: 30 }, () => randomUUID());
      const batches = ids.map((id, i) => insertBatch(i + 1, id, i === 10 ? 'taken' : `free ${i}`));
      const results = await applyPush(ctx, batches);
      expect(results.filter((r) => r.status === 'rejected').map((r) => r.mutationId)).toEqual([11]);
      expect(results.filter((r) => r.status === 'applied')).toHaveLength(29);
      const log = await logOf(db, ctx.clientId);
      expect(log.map((r) => r.mutation).sort((a, b) => a - b)).toEqual(
        ids.map((_, i) => i + 1).filter((n) => n !== 11),
      );
      expect(await lastOf(db, ctx.clientId)).toBe(30);
    });

    it('batches that write one row in turn: the row ends as the last one left it, each change logged with its batch', async () => {
      const db = await open();
      const ctx = client(db);
      const id = randomUUID();
      const batches: BatchJson[] = [
        insertBatch(1, id, 'first'),
        { mutationId: 2, changes: [{ table: 'notes', op: 'delete', pk: { id }, hlc: at(2) }] },
        insertBatch(3, id, 'again'),
        {
          mutationId: 4,
          changes: [{ table: 'notes', op: 'update', pk: { id }, values: { title: 'last' }, hlc: at(4) }],
        },
      ];
      const results = await applyPush(ctx, batches);
      expect(results.map((r) => r.status)).toEqual(['applied', 'applied', 'applied', 'applied']);
      expect(await db.select().from(notes)).toEqual([{ id, title: 'last', ownerId: 'u1' }]);
      const log = await db.execute<{ op: string; hlc: string; mutation: number }>(
        sql`SELECT op, hlc, mutation_id::int AS mutation FROM _syncline_changes WHERE origin = ${ctx.clientId} ORDER BY id`,
      );
      expect(log).toEqual([
        { op: 'I', hlc: at(1), mutation: 1 },
        { op: 'D', hlc: at(2), mutation: 2 },
        { op: 'I', hlc: at(3), mutation: 3 },
        { op: 'U', hlc: at(4), mutation: 4 },
      ]);
      const [stamps] = await db.execute<{
        cols: Record<string, string>;
        created: string;
        deleted: string | null;
      }>(
        sql`SELECT cols, created, deleted FROM _syncline_stamps WHERE table_name = 'notes' AND pk = ${JSON.stringify({ id })}::jsonb`,
      );
      expect(stamps).toEqual({
        cols: { id: at(3), title: at(4), owner_id: at(3) },
        created: at(3),
        deleted: null,
      });
    });

    it('a batch stamped too far ahead in a run is rejected alone', async () => {
      const db = await open();
      const ctx = client(db);
      const ids = Array.from({ length: 5 }, () => randomUUID());
      const batches = ids.map((id, i) => insertBatch(i + 1, id, `ahead ${i}`));
      const ahead = encodeHlc({ wallMs: Date.now() + 120_000, counter: 0, nodeId: 'client-a' });
      batches[2] = { ...batches[2]!, changes: [{ ...batches[2]!.changes[0]!, hlc: ahead }] };
      const results = await applyPush(ctx, batches);
      expect(results.map((r) => r.status)).toEqual(['applied', 'applied', 'rejected', 'applied', 'applied']);
      expect(results[2]).toMatchObject({ reason: expect.stringContaining('ahead of this clock') });
      expect((await db.select().from(notes)).length).toBe(4);
    });

    it('many clients pushing runs at once: every batch applied once, in each client order', async () => {
      const db = await open();
      const clients = Array.from({ length: 12 }, () => client(db));
      const perClient = 40;
      const results = await Promise.all(
        clients.map((ctx, c) =>
          applyPush(
            ctx,
            Array.from({ length: perClient }, (_, i) => insertBatch(i + 1, randomUUID(), `c${c} n${i}`)),
          ),
        ),
      );
      expect(results.flat().filter((r) => r.status !== 'applied')).toEqual([]);
      expect((await db.select().from(notes)).length).toBe(clients.length * perClient);
      for (const ctx of clients) {
        expect(await lastOf(db, ctx.clientId)).toBe(perClient);
        const log = await logOf(db, ctx.clientId);
        expect(log.map((r) => r.mutation).sort((a, b) => a - b)).toEqual(
          Array.from({ length: perClient }, (_, i) => i + 1),
        );
      }
    });
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);
