import { randomUUID } from 'node:crypto';
import type { Schema } from '../../src/index.js';
import type { AnyTable } from '../../src/schema/table.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import { type ChangeJson, PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import type { AckResult } from '../../src/sync/protocol/messages-server.js';
import { encodeRow } from '../../src/sync/protocol/value-codec.js';
import { helloMessage, RawClient, type TestServer } from '../support/sync-server.js';

/**
 * What the write-rule attacks of test/security need: users that push hand-made changes over the
 * wire protocol to a real server, with stamps of their choosing, and read their acks.
 */

/**
 * A stamp `aheadMs` from now (negative: in the past). The server takes stamps up to 60 s ahead,
 * so an attacker can stamp a change about a minute into the future.
 *
 * @example
 *   const hlc = stampIn(50_000); // newer than anything written in the next 50 s
 */
export function stampIn(aheadMs: number, nodeId = 'client'): string {
  return encodeHlc({ wallMs: Date.now() + aheadMs, counter: 0, nodeId });
}

/**
 * An insert of `row` (SQL names, app values) into `table`, keyed by its `id`.
 *
 * @example
 *   await ann.push(insertOf(tasks, { id, owner_id: 'ann', title: 'x' }));
 */
export function insertOf(table: AnyTable, row: Record<string, unknown>, hlc = stampIn(0)): ChangeJson {
  return {
    table: table.$name,
    op: 'insert',
    pk: { id: row.id as string },
    values: encodeRow(table, row),
    hlc,
  };
}

/**
 * An update of the row `id` setting `values` (SQL names, app values).
 *
 * @example
 *   await ann.push(updateOf(tasks, id, { approved: true }));
 */
export function updateOf(
  table: AnyTable,
  id: string,
  values: Record<string, unknown>,
  hlc = stampIn(0),
): ChangeJson {
  return { table: table.$name, op: 'update', pk: { id }, values: encodeRow(table, values), hlc };
}

/**
 * A delete of the row `id`.
 *
 * @example
 *   await mallory.push(deleteOf(tasks, id, stampIn(50_000)));
 */
export function deleteOf(table: AnyTable, id: string, hlc = stampIn(0)): ChangeJson {
  return { table: table.$name, op: 'delete', pk: { id }, hlc };
}

/**
 * One user's connection: `push` sends one batch (the next mutation id) and resolves to its
 * outcome; `client` is the socket, whose shapes' changes stay in `client.received`.
 *
 * @example
 *   const ann = await connectUser(t, 'ann', [{ id: 'tasks', table: 'tasks' }]);
 *   expect(await ann.push(insertOf(tasks, row))).toEqual({ mutationId: 1, status: 'applied' });
 */
export interface UserConnection {
  readonly client: RawClient;
  push(...changes: ChangeJson[]): Promise<AckResult>;
}

/**
 * Connects `userId` (with `claims` in its token) to the test server, subscribed to `tables`
 * (whole tables), and waits until its snapshots are in.
 *
 * @example
 *   const mallory = await connectUser(t, 'mallory');
 */
export async function connectUser(
  t: TestServer<Schema>,
  userId: string,
  tables: readonly string[] = [],
  claims: Record<string, unknown> = {},
): Promise<UserConnection> {
  const clientId = randomUUID();
  const client = await RawClient.connect(t.url);
  const shapes = tables.map((table) => ({ id: table, table }));
  await client.sync(
    helloMessage(t.server.db.schema, { clientId, token: await t.token(userId, claims), shapes }),
  );
  let mutationId = 0;
  return {
    client,
    async push(...changes) {
      mutationId += 1;
      client.send({ type: 'push', v: PROTOCOL_VERSION, batches: [{ mutationId, changes }] });
      const ack = await client.nextOf('ack');
      return ack.results[0]!;
    },
  };
}

/**
 * Resolves once `client` has received a change of row `id` (within `timeoutMs`, 1 s by default):
 * how a test shows that a legitimate write reached another client.
 *
 * @example
 *   await changeReaches(bobOther.client, id);
 */
export async function changeReaches(client: RawClient, id: string, timeoutMs = 1000): Promise<void> {
  const seen = () =>
    client.received.some((m) => m.type === 'changes' && m.changes.some((c) => c.pk.id === id));
  const deadline = Date.now() + timeoutMs;
  while (!seen()) {
    if (Date.now() > deadline)
      throw new Error(`no change of row ${id} reached the client within ${timeoutMs} ms`);
    await client.next(undefined, Math.max(1, deadline - Date.now())).catch(() => {});
  }
}

/**
 * The reason of a rejected outcome with every key in `ids` replaced by `<key>`, so that two
 * refusals of different rows can be compared word for word.
 *
 * @example
 *   expect(refusal(a, [bobsId])).toBe(refusal(b, [freeId]));
 */
export function refusal(result: AckResult, ids: readonly string[]): string {
  if (result.status !== 'rejected') throw new Error(`expected a rejection, got ${JSON.stringify(result)}`);
  return ids.reduce((text, id) => text.split(id).join('<key>'), result.reason);
}
