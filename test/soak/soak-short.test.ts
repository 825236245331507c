import { describe, expect, it } from 'vitest';
import { DEFAULT_OPTIONS, type SoakOptions } from '../../soak/options.js';
import { runSeed } from '../../soak/run-seed.js';
import { serverDrivers } from '../support/sync-server.js';

/**
 * The short variant of `npm run soak` (soak/run.ts): a few seeds of 3 client processes and a
 * server process, every fault kind in the plan, on PGlite and (with DATABASE_URL) on the
 * PostgreSQL server, about a minute in all. Every seed must converge with no violation of any
 * kind; a failure shows the violations and the history, and `npm run soak -- --seed N --db ...`
 * replays it. Seeds 11 and 12 draw 8 of the 9 fault kinds (all but `terminate`; `skew` once, near
 * the end); `npm run soak` runs them all.
 */

const SEEDS = [11, 12];

function options(db: 'pglite' | 'postgres'): SoakOptions {
  return {
    ...DEFAULT_OPTIONS,
    db,
    variant: 'full',
    clients: 3,
    ops: 40,
    faultEvery: 4,
    shrink: false,
    convergeTimeoutMs: 30_000,
    progress: false,
  };
}

for (const db of serverDrivers) {
  describe(`soak, short [${db}]`, () => {
    for (const seed of SEEDS) {
      it(`seed ${seed}: converges, nothing lost, no unexplained failure`, async () => {
        const result = await runSeed(options(db), seed);
        const report = [
          ...result.violations.map((v) => `[${v.kind}] ${v.message}`),
          `replay: npm run soak -- --seed ${seed} --db ${db} --schema full --clients 3 --ops 40 --fault-every 4`,
          ...result.historyLines,
        ].join('\n');
        expect(result.ops, 'the plan ran').toBeGreaterThan(30);
        expect(result.violations, report).toEqual([]);
        expect(result.convergeMs, 'converged').toBeDefined();
      }, 120_000);
    }
  });
}
