import { integer, schema, table, text } from '../../src/index.js';
import type { Migrator } from '../../src/migrations/migrator.js';

/**
 * An app whose migration steps write down every time they run, and take their time doing it, so
 * tests of concurrent opens can count how often each step ran. Shared by the concurrent-open
 * tests and the child processes they start (test/support/migrate-in-child.ts).
 */
export const migrationRuns = table('migration_runs', {
  version: integer().notNull(),
  /** Who ran the step: a driver number or a process id. */
  runner: text().notNull(),
});

/** Version 1: just the table the steps write to. */
export const countedAppV1 = schema({ migrationRuns }, { version: 1 });

/** Version 3, with steps 2 and 3 each recording `runner` and then holding their transaction for 200 ms. */
export function countedAppV3(runner: string) {
  const step = (version: number) => async (m: Migrator) => {
    await m.db.insert(migrationRuns).values({ version, runner });
    if (m.db.dialect.name === 'postgres') await m.sql`SELECT pg_sleep(0.2)`;
    else await new Promise((resolve) => setTimeout(resolve, 200));
  };
  return schema({ migrationRuns }, { version: 3, migrations: { 2: step(2), 3: step(3) } });
}
