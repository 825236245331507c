import { randomUUID } from 'node:crypto';
import type { Schema } from '../../src/schema/schema.js';
import { HybridLogicalClock } from '../../src/sync/protocol/hlc.js';
import type { BatchJson, ChangeJson } from '../../src/sync/protocol/messages-client.js';
import type { AckResult } from '../../src/sync/protocol/messages-server.js';
import { applyPush, type PushContext } from '../../src/sync/server/apply-push.js';
import { RuleSet, type SyncRules } from '../../src/sync/server/rules.js';
import type { TestServer } from './sync-server.js';

let nextMutationId = 1;

/**
 * Pushes batches straight into a test server's database with `applyPush`, as one new client of
 * user `u1` (or `userId`) under `rules` (with a fresh client id, or `clientId`): each call is one
 * batch of the given changes, and returns its outcome (whose `mutationId` names the batch).
 *
 * @example
 *   const push = testPusher(t, appSchema);
 *   expect((await push({ table: 'notes', op: 'delete', pk: { id }, hlc })).status).toBe('applied');
 */
export function testPusher<S extends Schema>(
  t: TestServer<S>,
  schema: S,
  rules?: SyncRules<S>,
  userId = 'u1',
  clientId: string = randomUUID(),
): (...changes: ChangeJson[]) => Promise<AckResult> {
  const ctx: PushContext = {
    db: t.server.db,
    schema,
    clientId,
    user: { userId },
    rules: new RuleSet(schema, rules),
    clock: new HybridLogicalClock('server'),
  };
  return async (...changes) => {
    const batch: BatchJson = { mutationId: nextMutationId++, changes };
    const [result] = await applyPush(ctx, [batch]);
    return result!;
  };
}
