import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { integer, schema, table } from '../../src/index.js';
import { ShapeRecorder } from '../support/logical-recorder.js';
import { requireAll } from '../support/requirements.js';
import { logicalAvailable, startTestServer } from '../support/sync-server.js';

/**
 * Logical capture keeps commit order across concurrent transactions: their rows interleave in the
 * WAL, but the consumer logs each transaction whole when it commits, so a client gets them in the
 * order they committed. Each transaction inserts its row first, then takes the next number from a
 * counter row (a row lock: the transactions commit in the order of their numbers) and writes it
 * into its row.
 */

const items = table('items', { id: integer().primaryKey(), n: integer().notNull() });
const orderSchema = schema({ items });

const WRITERS = 8;
const TRANSACTIONS_EACH = 25;

describe.skipIf(!logicalAvailable && !requireAll)('logical capture: commit order', () => {
  it('concurrent transactions reach a client whole, in the order they committed', async () => {
    const t = await startTestServer(orderSchema, { driver: 'logical' });
    await t.external('CREATE TABLE counter (v integer NOT NULL); INSERT INTO counter VALUES (0)');
    const recorder = new ShapeRecorder(orderSchema, 'items', 'id', await t.token('u1'));
    await recorder.connect(t.url);
    const writers = await Promise.all(Array.from({ length: WRITERS }, () => t.connectExternal()));
    await Promise.all(
      writers.map(async (writer: pg.Client, w) => {
        for (let i = 0; i < TRANSACTIONS_EACH; i++) {
          const id = w * TRANSACTIONS_EACH + i + 1;
          await writer.query('BEGIN');
          await writer.query('INSERT INTO items (id, n) VALUES ($1, 0)', [id]);
          // The inserts of other transactions go into the WAL meanwhile.
          await writer.query('SELECT pg_sleep($1)', [Math.random() * 0.004]);
          await writer.query(
            'WITH c AS (UPDATE counter SET v = v + 1 RETURNING v) UPDATE items SET n = c.v FROM c WHERE id = $1',
            [id],
          );
          await writer.query('COMMIT');
        }
      }),
    );
    const total = WRITERS * TRANSACTIONS_EACH;
    await recorder.until((r) => [...r.rows.values()].filter((row) => row.n !== 0).length === total);
    await recorder.close();

    // The number each transaction took, by row: the commit order.
    const committed = new Map([...recorder.rows].map(([key, row]) => [key, row.n as number]));
    expect([...committed.values()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    const order = recorder.events.filter((e) => e.kind !== 'snapshot').map((e) => committed.get(e.key)!);
    // Each transaction's insert and update arrive together, the transactions in commit order.
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(order.length).toBe(total * 2);
  });
});
