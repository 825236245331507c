import type { Schema } from '../../src/index.js';
import type { AnyTable } from '../../src/schema/table.js';
import type { RejectedEvent } from '../../src/sync/client/index.js';
import { encodeRow, type JsonRow } from '../../src/sync/protocol/value-codec.js';
import { decodeLogRow } from '../../src/sync/server/log-values.js';
import type { DirectWriter, PushedChange, SocketTap } from './sync-fixture.js';
import { canonicalJson, type ModelChange } from './sync-model.js';

/**
 * The history a `SyncModel` is fed with, recorded from real components: what each client pushed
 * (the push frames its `SocketTap` saw), minus the batches the server rejected (the client's
 * `rejected` events), plus the writes made straight to the server's database (its change log rows
 * without an origin, which hold the stamp the capture trigger gave them), in the order the server
 * applied them. That order only matters for foreign-key cascades, and a tap cannot see it: a
 * trigger of the test's own on `_syncline_clients` (`installBatchOrder`) takes a number from the
 * change log's id sequence as the transaction that applies each batch commits, so pushed batches
 * and direct writes (numbered by their log rows) sort on one scale: a write that waited for a
 * batch's row locks, or saw its commit, comes after it, and a batch that waited for a write, or
 * saw it, comes after that write.
 */

/** The test's own table of when each batch was applied (a number from the change log's id sequence). */
const ORDER_TABLE = '_test_batch_order';

/**
 * Installs the trigger that records, for every batch the server settles, a number from the change
 * log's id sequence, taken in the batch's own transaction as it commits. Call once the server has
 * started (capture installed), before any client pushes.
 *
 * @example
 *   const direct = await directWriter(t);
 *   await installBatchOrder(direct);
 */
export async function installBatchOrder(direct: DirectWriter): Promise<void> {
  const [{ schema, seq }] = (await direct.query(
    "SELECT current_schema() AS schema, pg_get_serial_sequence('_syncline_changes', 'id') AS seq",
  )) as [{ schema: string; seq: string }];
  const table = `"${schema}".${ORDER_TABLE}`;
  await direct.query(
    `CREATE TABLE IF NOT EXISTS ${table} (client_id text NOT NULL, from_id bigint NOT NULL, mutation_id bigint NOT NULL, position bigint NOT NULL)`,
  );
  // A move from one id to a later one settles every batch between them (the server applies a
  // push's batches in runs, one transaction each, docs/sync-internals.md "Runs of batches").
  await direct.query(`CREATE OR REPLACE FUNCTION "${schema}"._test_note_batch() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      INSERT INTO ${table} (client_id, from_id, mutation_id, position)
        VALUES (NEW.client_id, OLD.last_mutation_id, NEW.last_mutation_id, nextval('${seq}'));
      RETURN NULL;
    END $fn$`);
  // Deferred to the commit, not fired when the batch moves last_mutation_id: the server writes a
  // batch in runs (a run ends after a delete that cascades) and moves it at the end of the first,
  // while each later run's statements see what other writers committed in between. Numbered at
  // its first run, a batch whose second run waited for another writer's insert of a todo and
  // then cascaded it away was modeled before that insert: a todo written into a list the model
  // had already deleted (test/sync/sync-history-order.test.ts, FC_SEED=158838961).
  await direct.query(`DROP TRIGGER IF EXISTS _test_batch_order ON "${schema}"._syncline_clients`);
  await direct.query(`CREATE CONSTRAINT TRIGGER _test_batch_order AFTER UPDATE OF last_mutation_id ON "${schema}"._syncline_clients
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.last_mutation_id IS DISTINCT FROM NEW.last_mutation_id) EXECUTE FUNCTION "${schema}"._test_note_batch()`);
}

/**
 * One client whose pushes go into the history: its client id (`sync.clientId`), a name for
 * messages, the tap on its sockets and the rejections it was told of.
 *
 * @example
 *   const source: PushSource = { name: c.name, clientId: c.sync.clientId!, tap: c.tap, rejected: c.rejected };
 */
export interface PushSource {
  readonly name: string;
  readonly clientId: string;
  readonly tap: SocketTap;
  readonly rejected: readonly RejectedEvent[];
}

interface Entry {
  readonly position: bigint;
  readonly changes: readonly ModelChange[];
}

/**
 * The pushed batches of one client that the server applied: each batch once (a batch sent again
 * after a lost ack must be the same batch), without those it rejected, by mutation id.
 */
function appliedBatches(source: PushSource): Map<number, ModelChange[]> {
  const batches = new Map<number, ModelChange[]>();
  const texts = new Map<number, string>();
  for (const frame of source.tap.pushes) {
    const push = JSON.parse(frame) as {
      batches: { mutationId: number; changes: Omit<PushedChange, 'mutationId'>[] }[];
    };
    for (const batch of push.batches) {
      const id = batch.mutationId;
      const changes: ModelChange[] = batch.changes.map((c) => ({
        table: c.table,
        op: c.op,
        pk: c.pk as JsonRow,
        values: c.values as JsonRow | undefined,
        hlc: c.hlc,
        source: `${source.name}#${id}`,
      }));
      const text = canonicalJson(changes);
      const earlier = texts.get(id);
      if (earlier !== undefined && earlier !== text) {
        throw new Error(
          `client ${source.name} sent batch ${id} twice with different changes:\n${earlier}\n${text}`,
        );
      }
      texts.set(id, text);
      batches.set(id, changes);
    }
  }
  for (const r of source.rejected) batches.delete(r.mutationId);
  return batches;
}

/** A direct write's log row as model changes (a key change is a delete and an insert). */
function directChanges(table: AnyTable, row: Record<string, unknown>): ModelChange[] {
  const encode = (logged: unknown) =>
    encodeRow(table, decodeLogRow(table, logged as Record<string, unknown>));
  const hlc = row.hlc as string;
  const pk = encode(row.pk);
  const source = `direct(${row.id as string})`;
  if (row.op === 'D') return [{ table: table.$name, op: 'delete', pk, hlc, source }];
  const image = encode(row.row);
  if (row.op === 'I') return [{ table: table.$name, op: 'insert', pk, values: image, hlc, source }];
  if (row.old_pk !== null) {
    return [
      { table: table.$name, op: 'delete', pk: encode(row.old_pk), hlc, source },
      { table: table.$name, op: 'insert', pk, values: image, hlc, source },
    ];
  }
  // An update logs its new row and the old values of the columns it changed: it set those.
  const changed = Object.keys(row.old_values as Record<string, unknown>);
  const values = Object.fromEntries(
    changed.filter((name) => name in image).map((name) => [name, image[name]!]),
  );
  return [{ table: table.$name, op: 'update', pk, values, hlc, source }];
}

/**
 * The whole history, in the order the server applied it: every batch the `sources` pushed and the
 * server applied (batch order kept within it), and every direct write of the change log. Needs
 * `installBatchOrder` to have run before the first push; call it once everything settled (every
 * client flushed: each batch it pushed is settled). Fails when an applied batch has no recorded
 * position (it was never applied: the server lost it).
 *
 * @example
 *   const model = new SyncModel(e2eSchema.tableList);
 *   for (const change of await collectHistory(direct, e2eSchema, sources)) model.apply(change);
 */
export async function collectHistory(
  direct: DirectWriter,
  schema: Schema,
  sources: readonly PushSource[],
): Promise<ModelChange[]> {
  const entries: Entry[] = [];
  // Each client's moves of its last mutation id, as they committed: a batch was settled by the
  // first move past it (a client's last id only moves forward).
  const moves = new Map<string, { from: number; to: number; position: bigint }[]>();
  for (const row of await direct.query(
    `SELECT client_id, from_id::text AS from_id, mutation_id::text AS mutation_id, position::text AS position
       FROM ${ORDER_TABLE} ORDER BY position`,
  )) {
    const list = moves.get(row.client_id as string) ?? [];
    list.push({
      from: Number(row.from_id),
      to: Number(row.mutation_id),
      position: BigInt(row.position as string),
    });
    moves.set(row.client_id as string, list);
  }
  for (const source of sources) {
    for (const [id, changes] of appliedBatches(source)) {
      // Batches settled by one move share its position; the sort below is stable, so they keep
      // their order (by mutation id, as appliedBatches lists them).
      const position = moves.get(source.clientId)?.find((m) => m.from < id && id <= m.to)?.position;
      if (position === undefined) {
        throw new Error(
          `client ${source.name} pushed batch ${id}, which was not rejected, but the server never settled it (or ${ORDER_TABLE} missed it: ` +
            `installBatchOrder must run before the first push, and counts on every settled batch moving _syncline_clients.last_mutation_id past it as its transaction commits): ${canonicalJson(changes)}`,
        );
      }
      entries.push({ position, changes });
    }
  }
  const log = await direct.query(
    `SELECT id::text AS id, table_name, op::text AS op, pk, old_pk, "row", old_values, hlc
       FROM _syncline_changes WHERE origin IS NULL ORDER BY id`,
  );
  for (const row of log) {
    const table = schema.tableByName(row.table_name as string);
    if (!table) continue;
    entries.push({ position: BigInt(row.id as string), changes: directChanges(table, row) });
  }
  entries.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
  return entries.flatMap((e) => e.changes);
}
