import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eq, integer, schema, sql, table, text, uuid } from '../../src/index.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import { requireAll } from '../support/requirements.js';
import { helloMessage, logicalAvailable, RawClient, startTestServer } from '../support/sync-server.js';
import { testPusher } from '../support/test-pusher.js';

/**
 * Logical-replication capture (`capture: 'logical'`): no triggers on the writers' path; a consumer
 * of the slot logs and stamps each committed transaction as the triggers would. What is special
 * to this mode: writes reach the log after their commit, so a push must wait for the consumer
 * before it reads stamps, and the origin of a push travels in the WAL as a logical message.
 */

const notes = table('notes', { id: uuid().primaryKey(), body: text().notNull(), tag: text() });
// Columns named like the log's own and like SQL keywords.
const odd = table('odd', {
  id: integer().primaryKey(),
  n: text(),
  origin: text(),
  op: text(),
  hlc: text(),
  order: text(),
  select: integer(),
});
const logicalSchema = schema({ notes, odd });

describe.skipIf(!logicalAvailable && !requireAll)('logical capture', () => {
  const stampsOf = async (db: { execute: (q: never) => Promise<unknown[]> }, id: string) =>
    (
      (await db.execute(
        sql`select cols from _syncline_stamps where table_name = 'notes' and pk = ${JSON.stringify({ id })}::jsonb` as never,
      )) as { cols: Record<string, string> }[]
    )[0]?.cols;

  it('logs direct writes, stamped from their commit, with no capture triggers on the table', async () => {
    const t = await startTestServer(logicalSchema, { driver: 'logical' });
    const triggers = await t.external(
      "select tgname from pg_trigger where tgrelid = 'notes'::regclass and not tgisinternal order by 1",
    );
    expect(triggers.map((r) => r.tgname)).toEqual(['syncline_logical_truncate']);
    const id = randomUUID();
    await t.server.db.insert(notes).values({ id, body: 'direct' });
    await t.server.db.update(notes).set({ tag: 'x' }).where(eq(notes.id, id));
    await t.settled();
    const logged = await t.server.db.execute<{
      op: string;
      row: Record<string, unknown>;
      old_values: unknown;
    }>(sql`select op, "row", old_values from _syncline_changes order by id`);
    expect(logged.map((r) => [r.op.trim(), r.row.tag])).toEqual([
      ['I', null],
      ['U', 'x'],
    ]);
    expect(logged[1]!.old_values).toEqual({ tag: null });
    const cols = await stampsOf(t.server.db as never, id);
    expect(cols!.tag! > cols!.body!).toBe(true);
  });

  it('streams direct writes to a client, odd column names included, and TRUNCATE as deletes', async () => {
    const t = await startTestServer(logicalSchema, { driver: 'logical' });
    const client = await RawClient.connect(t.url);
    client.send(
      helloMessage(logicalSchema, { token: await t.token('u1'), shapes: [{ id: 'odd', table: 'odd' }] }),
    );
    await client.next('welcome');
    await client.ping();
    await t.external(
      `insert into odd (id, n, origin, op, hlc, "order", "select") values (1, 'n', 'o', 'p', 'h', 'r', 7)`,
    );
    await t.external('truncate odd');
    await client.ping();
    const changes = client.received.flatMap((m) => (m.type === 'changes' ? m.changes : []));
    expect(changes.map((c) => [c.op, c.pk])).toEqual([
      ['insert', { id: 1 }],
      ['delete', { id: 1 }],
    ]);
    expect(changes[0]!.values).toMatchObject({
      n: 'n',
      origin: 'o',
      op: 'p',
      hlc: 'h',
      order: 'r',
      select: 7,
    });
  });

  it('a pushed change is logged with its origin and stamp, and its client does not get it back', async () => {
    const t = await startTestServer(logicalSchema, { driver: 'logical' });
    const push = testPusher(t, logicalSchema);
    const id = randomUUID();
    const hlc = encodeHlc({ wallMs: Date.now(), counter: 0, nodeId: 'c1' });
    const outcome = await push({
      table: 'notes',
      op: 'insert',
      pk: { id },
      values: { id, body: 'pushed', tag: null },
      hlc,
    });
    expect(outcome.status).toBe('applied');
    await t.settled();
    const [logged] = await t.server.db.execute<{
      hlc: string;
      origin: string | null;
      mutation_id: string | null;
    }>(sql`select hlc, origin, mutation_id::text from _syncline_changes`);
    expect(logged!.hlc).toBe(hlc);
    expect(logged!.origin).not.toBeNull();
  });

  it('a direct write committed just before a push with an older stamp wins its column, as with triggers', async () => {
    const t = await startTestServer(logicalSchema, { driver: 'logical' });
    const push = testPusher(t, logicalSchema);
    const id = randomUUID();
    const old = () => encodeHlc({ wallMs: Date.now() - 5000, counter: 0, nodeId: 'slow' });
    expect(
      (
        await push({
          table: 'notes',
          op: 'insert',
          pk: { id },
          values: { id, body: 'first', tag: null },
          hlc: old(),
        })
      ).status,
    ).toBe('applied');
    // The consumer is held up (the log locked), so the direct write below has no stamp yet when
    // the push arrives: without the push's wait, the push's older stamp found none and won.
    const blocker = await t.connectExternal();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE _syncline_changes IN SHARE ROW EXCLUSIVE MODE');
    await t.external('update notes set body = $1 where id = $2', ['direct', id]);
    const pushed = push({ table: 'notes', op: 'update', pk: { id }, values: { body: 'pushed' }, hlc: old() });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await blocker.query('COMMIT');
    await pushed;
    const [row] = await t.server.db.select().from(notes).where(eq(notes.id, id));
    expect(row!.body).toBe('direct');
    const cols = await stampsOf(t.server.db as never, id);
    expect(cols!.body! > old()).toBe(true);
  });

  it('refuses a table without a primary key, and PGlite, clearly', async () => {
    const loose = table('loose', { a: text() });
    await expect(startTestServer(schema({ loose }), { driver: 'logical' })).rejects.toThrow(/primary key/);
    const { createSyncServer } = await import('../../src/sync/server/index.js');
    const { pglite } = await import('../../src/drivers/pglite/index.js');
    await expect(
      createSyncServer({
        schema: logicalSchema,
        database: pglite({}),
        auth: { jwtSecret: 'x'.repeat(32) },
        capture: 'logical',
      }),
    ).rejects.toThrow(/PGlite has no logical replication/);
  });
});
