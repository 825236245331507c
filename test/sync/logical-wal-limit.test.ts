import { describe, expect, it } from 'vitest';
import { integer, schema, table, text } from '../../src/index.js';
import type { LogEntry } from '../../src/sync/server/server-log.js';
import { ShapeRecorder } from '../support/logical-recorder.js';
import { requireAll } from '../support/requirements.js';
import { logicalAvailable, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * The WAL retention limit of logical capture: a slot nobody consumed while the WAL grew past
 * `logical.maxRetainedWalBytes` is dropped and made again by the next server, with a warning; the
 * changes of the dropped stretch never reach the log, so the log is cut and a client with a cursor
 * takes a fresh snapshot, which holds them: nothing is silently lost, and sync goes on.
 */

const items = table('items', { id: integer().primaryKey(), body: text().notNull() });
const walSchema = schema({ items });

describe.skipIf(!logicalAvailable && !requireAll)('logical capture: the WAL retention limit', () => {
  it('a slot past the limit is dropped with a warning, and clients take a fresh snapshot and converge', async () => {
    const first = await startTestServer(walSchema, { driver: 'logical' });
    const recorder = new ShapeRecorder(walSchema, 'items', 'id', await first.token('u1'));
    await recorder.connect(first.url);
    await first.external(`INSERT INTO items SELECT g, 'before' FROM generate_series(1, 10) g`);
    await recorder.until((r) => r.rows.size === 10, 10_000, 'the first rows');
    await recorder.close();
    // No server consumes now: what follows stays in the slot's WAL.
    await first.server.close();
    await first.external(`INSERT INTO items SELECT g, 'while down' FROM generate_series(11, 15) g`);
    await first.external(`UPDATE items SET body = 'changed while down' WHERE id = 3`);
    await first.external('DELETE FROM items WHERE id IN (1, 2)');
    await first.external(
      `CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 32) AS pad FROM generate_series(1, 4000) g`,
    );

    const warnings: LogEntry[] = [];
    const second = await startTestServer(walSchema, {
      shareWith: first,
      logical: { maxRetainedWalBytes: 1 << 20 },
      log: { level: 'warn', sink: (entry) => warnings.push(entry) },
    });
    await waitFor(
      () => warnings.some((w) => w.event === 'capture.slot_dropped'),
      10_000,
      'the capture.slot_dropped warning',
    );
    expect(warnings.find((w) => w.event === 'capture.slot_dropped')!.message).toMatch(
      /over logical\.maxRetainedWalBytes.*every client takes a fresh snapshot/,
    );

    await recorder.connect(second.url);
    await recorder.until((r) => r.snapshots >= 2, 10_000, 'a fresh snapshot');
    const expected = async () =>
      new Map(
        (await second.external('SELECT id, body FROM items ORDER BY id')).map((r) => [String(r.id), r.body]),
      );
    const held = () => new Map([...recorder.rows].map(([key, row]) => [key, row.body]));
    expect(held()).toEqual(await expected());
    expect(held().get('3')).toBe('changed while down');

    // The new slot captures: a later write reaches the client as a change.
    await second.external(`INSERT INTO items VALUES (99, 'after')`);
    // The hub that read the log before the cut lets its connections go: the client comes back.
    recorder.reconnectTo = second.url;
    await recorder.until((r) => r.rows.has('99'), 10_000, 'a write after the new slot');
    expect(held()).toEqual(await expected());
    await recorder.close();
  }, 60_000);
});
