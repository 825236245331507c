import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { e2eSchema } from '../support/sync-fixture.js';
import { helloMessage, RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';
import { writeBigRows } from './big-rows.js';

/**
 * Issue 17, point 4: the hub's window of recent changes (kept so that a client slightly behind
 * catches up without a query) is bounded in bytes, not only in changes. Big rows written straight
 * to PostgreSQL, far fewer than the window's 10,000 changes, leave the server holding at most
 * the window's 32 MiB of them once delivered; before, it held them all.
 */

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** The JS heap in use after full collections: what the server (in this process) holds on to. */
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const MiB = 1 << 20;

for (const driver of serverDrivers) {
  describe(`hub window in bytes [${driver}]`, () => {
    it('the hub keeps a bounded number of bytes of recent changes, whatever their count', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      const live = await RawClient.connect(t.url);
      live.send(
        helloMessage(e2eSchema, { token: await t.token('live'), shapes: [{ id: 'items', table: 'items' }] }),
      );
      await live.next('welcome');
      await live.nextOf('snapshot');
      const before = heapAfterGc();
      // 70 changes of 900 KB, far under the window's 10,000 changes: 63 MB of JSON. The window
      // keeps 32 MiB of them; before, it kept them all.
      for (let i = 0; i < 2; i++) await writeBigRows(t, 35, 900_000);
      let inserts = 0;
      await waitFor(
        () => {
          for (const m of live.received.splice(0)) if (m.type === 'changes') inserts += m.changes.length;
          return inserts >= 70;
        },
        20_000,
        'the 70 big rows to reach the live client',
      );
      expect(inserts).toBe(70);
      const grown = heapAfterGc() - before;
      expect(grown).toBeLessThan(48 * MiB);
    }, 60_000);
  });
}
