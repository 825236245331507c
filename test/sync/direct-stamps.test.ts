import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eq, schema, sql, table, text, uuid } from '../../src/index.js';
import { decodeHlc, encodeHlc, HLC_MAX_COUNTER } from '../../src/sync/protocol/hlc.js';
import type { ChangeJson } from '../../src/sync/protocol/messages-client.js';
import type { SyncRules } from '../../src/sync/server/rules.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { testPusher } from '../support/test-pusher.js';

/**
 * A direct write (server.db, another connection, TRUNCATE) is stamped after every stamp a
 * committed push wrote, even when the pushing client's clock runs ahead of PostgreSQL's (the
 * server allows up to a minute): stamped from PostgreSQL's clock alone, a direct delete of a row a
 * fast client had just written was older than that write, and the soak's skew fault saw deleted
 * rows kept by clients and direct updates undone by late pushes of older changes.
 */

const notes = table('notes', { id: uuid().primaryKey(), body: text().notNull(), tag: text() });
const stampSchema = schema({ notes });
type Server = TestServer<typeof stampSchema>;

for (const driver of serverDrivers) {
  describe(`direct writes are stamped after what they overwrite [${driver}]`, () => {
    const pusher = (t: Server, rules?: SyncRules<typeof stampSchema>) => testPusher(t, stampSchema, rules);
    const ahead = (ms: number, counter = 0) =>
      encodeHlc({ wallMs: Date.now() + ms, counter, nodeId: 'fast-client' });
    const stampsOf = async (t: Server, id: string) =>
      (
        await t.server.db.execute<{
          cols: Record<string, string>;
          created: string | null;
          deleted: string | null;
        }>(
          sql`select cols, created, deleted from _syncline_stamps where table_name = 'notes' and pk = ${JSON.stringify({ id })}::jsonb`,
        )
      )[0]!;
    const loggedStamps = async (t: Server, id: string) =>
      (
        await t.server.db.execute<{ op: string; hlc: string }>(
          sql`select op, hlc from _syncline_changes where table_name = 'notes' and pk = ${JSON.stringify({ id })}::jsonb order by id`,
        )
      ).map((r) => [r.op.trim(), r.hlc] as const);
    const insert = (id: string, hlc: string): ChangeJson => ({
      table: 'notes',
      op: 'insert',
      pk: { id },
      values: { id, body: 'pushed', tag: null },
      hlc,
    });

    it('a direct update, delete and insert each outrank the push 40 s ahead they follow', async () => {
      const t = await startTestServer(stampSchema, { driver });
      const push = pusher(t);
      const id = randomUUID();
      const pushed = ahead(40_000);
      expect((await push(insert(id, pushed))).status).toBe('applied');

      await t.server.db.update(notes).set({ tag: 'direct' }).where(eq(notes.id, id));
      const updated = (await stampsOf(t, id)).cols.tag!;
      expect(updated > pushed).toBe(true);
      expect(decodeHlc(updated).nodeId).toBe('postgres');

      await t.external('DELETE FROM notes WHERE id = $1', [id]);
      const deleted = (await stampsOf(t, id)).deleted!;
      expect(deleted >= updated).toBe(true);

      await t.server.db.insert(notes).values({ id, body: 'again' });
      const created = (await stampsOf(t, id)).created!;
      // Direct writes may share a stamp (they are ordered by their locks, and by the log).
      expect(created >= deleted).toBe(true);
      // The log carries the same stamps the stamps table holds.
      expect(await loggedStamps(t, id)).toEqual([
        ['I', pushed],
        ['U', updated],
        ['D', deleted],
        ['I', created],
      ]);

      // A late push of a change made before the direct writes (stamped 20 s ahead, behind them)
      // loses to them: the row keeps the direct insert's body.
      expect(
        (await push({ ...insert(id, ahead(20_000)), op: 'update', values: { body: 'late' } })).status,
      ).toBe('applied');
      expect((await t.server.db.select().from(notes).where(eq(notes.id, id)))[0]?.body).toBe('again');
    });

    it('a TRUNCATE outranks a push ahead, and a full counter carries into the next millisecond', async () => {
      const t = await startTestServer(stampSchema, { driver });
      const push = pusher(t);
      const id = randomUUID();
      const pushed = ahead(30_000, HLC_MAX_COUNTER);
      expect((await push(insert(id, pushed))).status).toBe('applied');
      await t.external('TRUNCATE notes');
      const deleted = decodeHlc((await stampsOf(t, id)).deleted!);
      const before = decodeHlc(pushed);
      expect(deleted).toEqual({ wallMs: before.wallMs + 1, counter: 0, nodeId: 'postgres' });
    });

    it('a batch a rule refuses leaves the clock as it was', async () => {
      const t = await startTestServer(stampSchema, { driver });
      const refused = pusher(t, { notes: { write: () => false } });
      const id = randomUUID();
      expect((await refused(insert(id, ahead(50_000)))).status).toBe('rejected');
      const before = Date.now();
      await t.server.db.insert(notes).values({ id, body: 'direct' });
      const created = decodeHlc((await stampsOf(t, id)).created!);
      // Stamped from PostgreSQL's clock, nowhere near the refused batch's 50 s ahead.
      expect(created.wallMs).toBeLessThan(before + 10_000);
    });

    it('pushes behind the clock leave the clock row alone', async () => {
      const t = await startTestServer(stampSchema, { driver });
      const push = pusher(t);
      const [{ high: start }] = await t.server.db.execute<{ high: string }>(
        sql`select high from _syncline_clock`,
      );
      const behind = encodeHlc({ wallMs: Date.now() - 5_000, counter: 0, nodeId: 'slow-client' });
      expect((await push(insert(randomUUID(), behind))).status).toBe('applied');
      const [{ high }] = await t.server.db.execute<{ high: string }>(sql`select high from _syncline_clock`);
      expect(high).toBe(start);
    });
  });
}
