import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { openDatabase } from '../../src/index.js';
import type { OpenDetails } from '../../src/migrations/run-migrations.js';
import { countedAppV3 } from './counted-migrations.js';

/**
 * A process that opens one database with countedAppV3, for tests of processes migrating at once.
 * MIGRATE_DIALECT is 'sqlite' (MIGRATE_TARGET a file) or 'postgres' (MIGRATE_TARGET a schema on
 * DATABASE_URL). It prints "ready", waits for a line on stdin so that all processes start together,
 * then opens, and prints what beforeOpen heard as JSON.
 */
const { MIGRATE_DIALECT: dialect, MIGRATE_TARGET: target, DATABASE_URL: url } = process.env;
if (!target || (dialect !== 'sqlite' && dialect !== 'postgres'))
  throw new Error('set MIGRATE_DIALECT and MIGRATE_TARGET');
const driver =
  dialect === 'sqlite' ? sqlite({ path: target }) : postgres({ connectionString: url!, schema: target });

const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
await once(lines, 'line');
lines.close();

let details: OpenDetails | undefined;
const db = await openDatabase(countedAppV3(`process ${process.pid}`), driver, {
  migrations: {
    beforeOpen: async (_db, d) => {
      details = d;
    },
  },
});
await db.close();
process.stdout.write(`${JSON.stringify(details)}\n`);
