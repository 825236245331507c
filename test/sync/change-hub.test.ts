import { expect, it } from 'vitest';
import { integer, schema, sql, table, text } from '../../src/index.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { ChangeHub, LogPrunedError } from '../../src/sync/server/change-hub.js';
import { ChangeLogReader, type TickedBatch } from '../../src/sync/server/change-log-reader.js';
import { ServerLog } from '../../src/sync/server/server-log.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';

/**
 * The change hub hands what the log reader ticks to every live subscriber in pages: a transaction
 * bigger than a page is read page by page after the first (so the first pages are on their way
 * while later ones are read), and every subscriber sees each tick once, in order, with no gap.
 */

const notes = table('notes', { id: integer().primaryKey(), body: text().notNull() });
const hubSchema = schema({ notes });

function recorder() {
  const batches: TickedBatch[] = [];
  return { batches, subscriber: { deliver: (b: TickedBatch) => batches.push(b), drained: async () => {} } };
}

/** Checks the batches are consecutive pages of at most `pageSize`, and returns their ticks. */
function ticksOf(batches: TickedBatch[], start: bigint, pageSize: number): bigint[] {
  let at = start;
  for (const b of batches) {
    expect(b.from).toBe(at);
    expect(b.changes.length).toBeLessThanOrEqual(pageSize);
    expect(b.changes.map((c) => c.tick)).toEqual(b.changes.map((_, i) => b.from + BigInt(i + 1)));
    expect(b.to).toBe(b.from + BigInt(b.changes.length));
    at = b.to;
  }
  return batches.flatMap((b) => b.changes.map((c) => c.tick));
}

dialectSuite(
  'change hub',
  (env) => {
    it('delivers a transaction bigger than a page as consecutive pages, every tick once', async () => {
      const db = await env.open(hubSchema);
      await installCapture(db, hubSchema.tableList);
      // How many changes each ticking read brought: at most a page, the rest is read page by page.
      const reader = new ChangeLogReader(db);
      const readNew = reader.readNew.bind(reader);
      const withTicking: number[] = [];
      reader.readNew = async (limit) => {
        const batch = await readNew(limit);
        withTicking.push(batch.changes.length);
        return batch;
      };
      const hub = new ChangeHub(reader, new ServerLog({ level: 'silent' }), { pageSize: 10 });
      await hub.start();
      const a = recorder();
      const b = recorder();
      await hub.attach(a.subscriber, 0n);
      await hub.attach(b.subscriber, 0n);

      await db.execute(
        sql`insert into ${notes} (id, body) select i, 'n' || i from generate_series(1, 95) as i`,
      );
      await db.insert(notes).values({ id: 96, body: 'small' });
      await hub.read();
      expect(ticksOf(a.batches, 0n, 10)).toEqual(Array.from({ length: 96 }, (_, i) => BigInt(i + 1)));
      expect(a.batches.length).toBe(10);
      expect(b.batches).toEqual(a.batches);
      expect(hub.position).toBe(96n);
      expect(Math.max(...withTicking)).toBeLessThanOrEqual(10);
      // start() reads no changes; the ticking read returns the first page, the rest come paged.
      expect(withTicking).toEqual([0, 10]);
      expect(a.batches.flatMap((x) => x.changes.map((c) => c.pk.id))).toEqual(
        Array.from({ length: 96 }, (_, i) => i + 1),
      );

      // A subscriber joining later catches up from the window, then goes on live.
      const late = recorder();
      await hub.attach(late.subscriber, 40n);
      await db.insert(notes).values({ id: 97, body: 'after' });
      await hub.read();
      expect(ticksOf(late.batches, 40n, 10).filter((t) => t > 40n)).toEqual(
        Array.from({ length: 57 }, (_, i) => BigInt(i + 41)),
      );
      await hub.close();
    });

    it('refuses to catch a subscriber up over changes pruned from the log, and serves the oldest kept cursor', async () => {
      const db = await env.open(hubSchema);
      await installCapture(db, hubSchema.tableList);
      const reader = new ChangeLogReader(db);
      await db.execute(sql`insert into ${notes} (id, body) select i, 'old' from generate_series(1, 5) as i`);
      await reader.readNew();
      // The cut: a millisecond after the first transaction, and a few before the second begins.
      const [{ at }] = await db.execute<{ at: number }>(
        sql`select ceil(extract(epoch from clock_timestamp()) * 1000)::float8 + 1 as at`,
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
      await db.execute(sql`insert into ${notes} (id, body) select i, 'new' from generate_series(6, 8) as i`);
      await reader.readNew();
      expect(await reader.prune(new Date(Number(at)))).toEqual({ changes: 5, oldestCursor: 5n });

      const hub = new ChangeHub(reader, new ServerLog({ level: 'silent' }), { pageSize: 10 });
      await hub.start();
      const refused = hub.attach(recorder().subscriber, 2n);
      await expect(refused).rejects.toThrow(
        'the changes after position 2 were pruned from the change log (it resumes at 6)',
      );
      // Not a failure of the server: the connection closes for a reconnect and a snapshot.
      await expect(refused).rejects.toBeInstanceOf(LogPrunedError);
      const kept = recorder();
      await hub.attach(kept.subscriber, 5n);
      expect(ticksOf(kept.batches, 5n, 10)).toEqual([6n, 7n, 8n]);
      await hub.close();
    });
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);
