import { describe, expect, it } from 'vitest';
import { encodeHlc, HybridLogicalClock } from '../../src/sync/protocol/hlc.js';
import type { BatchJson } from '../../src/sync/protocol/messages-client.js';
import { applyPush } from '../../src/sync/server/apply-push.js';
import { RuleSet } from '../../src/sync/server/rules.js';
import { directWriter, e2eSchema, fixedKeys, SocketTap } from '../support/sync-fixture.js';
import { collectHistory, installBatchOrder } from '../support/sync-history.js';
import { compareWithServer, formatDifferences, SyncModel } from '../support/sync-model.js';
import { postgresAvailable, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * The e2e property test's checker (test/support/sync-history.ts) places each pushed batch where the
 * server applied it, to replay foreign-key cascades in the model in the server's order. A batch
 * is written in runs (a run ends after the delete of a row other tables reference ON DELETE
 * CASCADE), each statement of a later run seeing what other writers committed since. The checker
 * used to number a batch when its first run moved the client's last mutation id, so a write that
 * committed while a later run waited for it was modeled after the batch: FC_SEED=158838961 under
 * load, where client C's batch (deletes of lists 2 and 0) waited in its second run for client A's
 * insert of a todo into list 0 and then cascaded it away, and the model, with A's insert after C's
 * batch, reported a todo written into a missing list ("writes the server must have refused").
 * The checker now numbers a batch as it commits.
 */

const [gone, kept, todo] = fixedKeys(3) as [string, string, string];

// PGlite runs one transaction at a time: no write can land between two runs of a batch there.
describe.skipIf(!postgresAvailable)('the history of the e2e checker [postgres]', () => {
  it('places a batch after a write that committed while its second run waited for it', async () => {
    const t = await startTestServer(e2eSchema, { driver: 'postgres' });
    const direct = await directWriter(t);
    await installBatchOrder(direct);
    for (const id of [gone, kept]) {
      await direct.query('INSERT INTO lists (id, name, owner_id) VALUES ($1, $2, $3)', [id, 'list', 'owner']);
    }

    // A backend holds list `kept` (as a push's foreign-key check holds the list of a todo it
    // inserts): the batch's delete of it, in the batch's second run, waits for the backend.
    const gate = await t.connectExternal();
    await gate.query('BEGIN');
    const [{ pid }] = (
      await gate.query('SELECT pg_backend_pid() AS pid FROM lists WHERE id = $1 FOR KEY SHARE', [kept])
    ).rows as [{ pid: number }];

    const clientId = 'client-c';
    const hlc = encodeHlc({ wallMs: Date.now(), counter: 0, nodeId: clientId });
    const batch: BatchJson = {
      mutationId: 1,
      changes: [
        { table: 'lists', op: 'delete', pk: { id: gone }, hlc },
        { table: 'lists', op: 'delete', pk: { id: kept }, hlc },
      ],
    };
    const tap = new SocketTap();
    tap.pushes.push(JSON.stringify({ type: 'push', v: 1, batches: [batch] }));
    const pushing = applyPush(
      {
        db: t.server.db,
        schema: e2eSchema,
        clientId,
        user: { userId: 'c' },
        rules: new RuleSet(e2eSchema, undefined),
        clock: new HybridLogicalClock('server'),
      },
      [batch],
    );
    await waitFor(
      async () => {
        const rows = await t.external(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
          [pid],
        );
        return rows[0]!.n === 1;
      },
      20_000,
      "the batch's second run to wait for the backend",
    );
    // Meanwhile the backend puts a todo into the list and commits; the batch then deletes the
    // list, and the todo with it by the cascade.
    await gate.query('INSERT INTO todos (id, list_id, title) VALUES ($1, $2, $3)', [todo, kept, 'direct']);
    await gate.query('COMMIT');
    expect((await pushing).map((r) => r.status)).toEqual(['applied']);

    // The situation happened: the todo's insert was logged between the batch's two runs.
    const log = await direct.query(
      "SELECT id::int AS id, table_name, op::text AS op, pk->>'id' AS key FROM _syncline_changes ORDER BY id",
    );
    const at = (table: string, op: string, key: string) =>
      log.find((r) => r.table_name === table && r.op === op && r.key === key)!.id as number;
    expect(at('lists', 'D', gone)).toBeLessThan(at('todos', 'I', todo));
    expect(at('todos', 'I', todo)).toBeLessThan(at('lists', 'D', kept));
    expect(at('todos', 'D', todo)).toBeGreaterThan(at('todos', 'I', todo));

    const model = new SyncModel(e2eSchema.tableList);
    for (const change of await collectHistory(direct, e2eSchema, [
      { name: 'C', clientId, tap, rejected: [] },
    ])) {
      model.apply(change);
    }
    expect(model.anomalies).toEqual([]);
    expect(formatDifferences(await compareWithServer(model, t.server.db), model)).toBe('');
    expect(model.rows('todos')).toEqual([]);
    await direct.close();
  });
});
