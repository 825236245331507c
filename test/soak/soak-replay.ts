import { expect } from 'vitest';
import { checkHistory } from '../../soak/check-history.js';
import { History } from '../../soak/history.js';
import { readLogOrder, recordLogOrder } from '../../soak/log-order.js';
import type { Write } from '../../soak/plan.js';
import type { SoakSchema } from '../../soak/schema.js';
import { applyServerWrites } from '../../soak/writes.js';
import type { ChangeJson } from '../../src/sync/protocol/messages-client.js';
import type { AckResult } from '../../src/sync/protocol/messages-server.js';
import type { JsonRow } from '../../src/sync/protocol/value-codec.js';
import { type serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { testPusher } from '../support/test-pusher.js';

/**
 * A soak history replayed by hand: the soak's server side (a test server with the soak's log
 * order recorded) and a `History` that the test fills as the harness would, so that the soak's
 * checker can be run on a sequence a seed produced by chance.
 *
 * @example
 *   const r = await startSoakReplay(s, driver);
 *   const id = await r.push(0, [{ table: 'owners', op: 'delete', pk: { id: owner }, hlc: r.stamp(1, 0) }]);
 *   r.heard(0, id);
 *   expect((await r.check()).violations).toEqual([]);
 */
export interface SoakReplay {
  readonly t: TestServer<any>;
  readonly history: History;
  /** A stamp of client `client`, `ms` after a base ahead of the backend's stamps (within the drift allowed). */
  stamp(ms: number, client: number): string;
  /** A backend write through the server's Database, noted as the harness notes one. */
  backend(stepId: number, writes: readonly Write[]): Promise<void>;
  /** Client `client` (id `client-<client>`) pushes one batch, which must apply; returns its mutation id. */
  push(client: number, changes: ChangeJson[]): Promise<number>;
  /** The harness hears that client `client`'s batch `mutationId` was applied. */
  heard(client: number, mutationId: number): void;
  /** Waits until the server's reader has ticked everything committed, then notes the log order. */
  noteLogOrder(): Promise<void>;
  /** Where the log order puts client `client`'s batch `mutationId` (a tick, or a place between two). */
  place(client: number, mutationId: number): number | undefined;
  /** Notes the log order, reads the server's rows and runs the soak's history check on them. */
  check(): Promise<{ server: Record<string, Record<string, unknown>[]> } & ReturnType<typeof checkHistory>>;
}

/**
 * Starts a test server on `driver` for the soak's schema `s`, records its log order as the soak's
 * server process does, and returns the replay.
 *
 * @example
 *   const r = await startSoakReplay(soakSchema('plain'), 'postgres');
 */
export async function startSoakReplay(
  s: SoakSchema,
  driver: (typeof serverDrivers)[number],
): Promise<SoakReplay> {
  const t = await startTestServer(s.schema, { driver });
  const db = t.server.db;
  await recordLogOrder(db);
  const history = new History();
  const base = Date.now() + 10_000;
  const pushers = new Map<number, (...changes: ChangeJson[]) => Promise<AckResult>>();
  const noteLogOrder = async () => {
    await t.settled();
    history.noteLogOrder(await readLogOrder(db));
  };
  return {
    t,
    history,
    stamp: (ms, client) => `${base + ms}-00000-client-${client}`,
    async backend(stepId, writes) {
      history.backendWrite(stepId, await applyServerWrites(db, s, writes));
    },
    async push(client, changes) {
      const clientId = `client-${client}`;
      let push = pushers.get(client);
      if (!push) pushers.set(client, (push = testPusher(t, s.schema, undefined, 'u1', clientId)));
      const result = await push(...changes);
      expect(result.status).toBe('applied');
      history.pushed(client, { clientId, batches: [{ mutationId: result.mutationId, changes }] });
      return result.mutationId;
    },
    heard(client, mutationId) {
      history.acked({ clientId: `client-${client}`, results: [{ mutationId, status: 'applied' }] });
    },
    noteLogOrder,
    place: (client, mutationId) => history.ticks.batch.get(`client-${client}:${mutationId}`),
    async check() {
      await noteLogOrder();
      const server: Record<string, Record<string, unknown>[]> = {};
      for (const table of s.tables) server[table.$name] = await db.select().from(table as any);
      return { server, ...checkHistory(s, history, server) };
    },
  };
}

/**
 * An item row of owner `owner` as a push frame carries it (SQL names, sync JSON values).
 *
 * @example
 *   const change: ChangeJson = { table: 'items', op: 'insert', pk: { id }, values: itemValues(id, owner), hlc };
 */
export function itemValues(id: string, owner: string): JsonRow {
  return {
    id,
    owner_id: owner,
    title: 'title',
    qty: '9007199261217021',
    payload: null,
    due_at: null,
    tags: [],
    note: null,
  };
}
