import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { type Database, type Driver, MigrationError, openDatabase, schema } from '../../src/index.js';
import type { OpenDetails } from '../../src/migrations/run-migrations.js';
import { rejection, storedVersion } from '../support/catalog.js';
import { countedAppV1, countedAppV3, migrationRuns } from '../support/counted-migrations.js';

/**
 * Several processes (or several pools of one process) opening one database at once must migrate
 * it exactly once: PostgreSQL through an advisory lock, SQLite through its write lock and a second
 * look at the version inside every step. The steps of countedAppV3 record each run and hold their
 * transaction for 200 ms, so the opens overlap.
 */

const databaseUrl = process.env.DATABASE_URL;
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const childScript = 'test/support/migrate-in-child.ts';

/** The runs of each step, in order. */
async function runsOf(db: Database<any>) {
  return db
    .select({ version: migrationRuns.version, runner: migrationRuns.runner })
    .from(migrationRuns)
    .orderBy(migrationRuns.version);
}

/** Opens countedAppV3 on each driver at once; gives the databases and what beforeOpen heard on each. */
async function openAllAtOnce(drivers: Driver[]) {
  const details: OpenDetails[] = [];
  const dbs = await Promise.all(
    drivers.map((driver, i) =>
      openDatabase(countedAppV3(`driver ${i}`), driver, {
        migrations: {
          beforeOpen: async (_db, d) => {
            details.push(d);
          },
        },
      }),
    ),
  );
  return { dbs, details };
}

/** Each step ran once, both by the same runner, and every open now sees version 3. */
async function expectMigratedOnce(dbs: Database<any>[]) {
  const runs = await runsOf(dbs[0]!);
  expect(runs.map((r) => r.version)).toEqual([2, 3]);
  for (const db of dbs) expect(await storedVersion(db)).toBe(3);
  return runs;
}

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts `count` processes running migrate-in-child.ts, lets them all open at the same moment,
 * and gives back what each reported. Each is killed after 30 s.
 */
async function openInProcesses(count: number, env: Record<string, string>): Promise<OpenDetails[]> {
  const children: ChildProcessWithoutNullStreams[] = [];
  const results: Promise<ChildResult>[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    let signalReady: () => void = () => {};
    ready.push(new Promise((resolve) => (signalReady = resolve)));
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.startsWith('ready\n')) signalReady();
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    results.push(
      new Promise((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => {
          signalReady();
          resolve({ code, stdout, stderr });
        });
      }),
    );
  }
  await Promise.all(ready);
  for (const child of children) child.stdin.end('go\n');
  const done = await Promise.all(results);
  for (const result of done) expect(result, result.stderr).toMatchObject({ code: 0 });
  return done.map((r) => JSON.parse(r.stdout.slice('ready\n'.length)) as OpenDetails);
}

describe.skipIf(!databaseUrl)('concurrent opens of one PostgreSQL database [postgres]', () => {
  let namespace: string;
  const drivers: Driver[] = [];

  /** A new pool on the test's schema (namespace). */
  const pool = () => {
    const driver = postgres({ connectionString: databaseUrl!, schema: namespace });
    drivers.push(driver);
    return driver;
  };

  async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }

  beforeEach(async () => {
    namespace = `concurrent_${process.pid}_${Date.now().toString(36)}`;
    // Made up front: the drivers' own CREATE SCHEMA IF NOT EXISTS is not safe to race.
    await admin((c) => c.query(`CREATE SCHEMA "${namespace}"`));
  });

  afterEach(async () => {
    while (drivers.length > 0) await drivers.pop()!.close();
    await admin((c) => c.query(`DROP SCHEMA IF EXISTS "${namespace}" CASCADE`));
  });

  it('four pools opening an older database at once: all resolve, each step runs once, one open migrates', async () => {
    await (await openDatabase(countedAppV1, pool())).close();
    const { dbs, details } = await openAllAtOnce([pool(), pool(), pool(), pool()]);
    const runs = await expectMigratedOnce(dbs);
    // The open that took the lock ran both steps; the others found version 3.
    expect(runs[0]!.runner).toBe(runs[1]!.runner);
    expect(details.filter((d) => d.from === 1)).toEqual([{ from: 1, to: 3, created: false }]);
    expect(details.filter((d) => d.from === 3)).toHaveLength(3);
  });

  it('four pools opening a new database at once: one of them creates it', async () => {
    let creations = 0;
    const details: OpenDetails[] = [];
    const dbs = await Promise.all(
      [pool(), pool(), pool(), pool()].map((driver) =>
        openDatabase(countedAppV3('creator'), driver, {
          migrations: {
            onCreate: async (m) => {
              creations++;
              await m.createAll();
              await m.sql`SELECT pg_sleep(0.2)`;
            },
            beforeOpen: async (_db, d) => {
              details.push(d);
            },
          },
        }),
      ),
    );
    expect(creations).toBe(1);
    expect(details.filter((d) => d.created)).toEqual([{ from: 0, to: 3, created: true }]);
    for (const db of dbs) expect(await storedVersion(db)).toBe(3);
    expect(await runsOf(dbs[0]!)).toEqual([]);
  });

  it('a failed migration lets go of the lock: the next open goes ahead', async () => {
    const shared = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    try {
      const onShared = () => {
        const driver = postgres({ pool: shared, schema: namespace });
        drivers.push(driver);
        return driver;
      };
      await (await openDatabase(countedAppV1, onShared())).close();
      const broken = schema(countedAppV1.tables, {
        version: 2,
        migrations: {
          2: async () => {
            throw new Error('broken step');
          },
        },
      });
      expect(await rejection(openDatabase(broken, onShared()))).toBeInstanceOf(MigrationError);
      // Another pool must get the lock (the failed open's connection went back to the app's pool).
      const { dbs } = await openAllAtOnce([pool()]);
      await expectMigratedOnce(dbs);
    } finally {
      await shared.end();
    }
  });

  it('two processes opening an older database at once: each step runs once', async () => {
    await (await openDatabase(countedAppV1, pool())).close();
    const details = await openInProcesses(2, { MIGRATE_DIALECT: 'postgres', MIGRATE_TARGET: namespace });
    expect(details.map((d) => d.from).sort()).toEqual([1, 3]);
    const db = await openDatabase(countedAppV3('check'), pool());
    const runs = await expectMigratedOnce([db]);
    expect(runs[0]!.runner).toMatch(/^process \d+$/);
    expect(runs[0]!.runner).toBe(runs[1]!.runner);
  });
});

describe('concurrent opens of one SQLite file [better-sqlite3]', () => {
  let dir: string;
  let path: string;
  const drivers: Driver[] = [];
  const file = () => {
    const driver = sqlite({ path });
    drivers.push(driver);
    return driver;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'syncline-concurrent-'));
    path = join(dir, 'app.db');
  });

  afterEach(async () => {
    while (drivers.length > 0) await drivers.pop()!.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('two opens on the same file at once migrate it once', async () => {
    await (await openDatabase(countedAppV1, file())).close();
    const { dbs, details } = await openAllAtOnce([file(), file()]);
    await expectMigratedOnce(dbs);
    // The opens took turns: the second found the work done.
    expect(details.map((d) => d.from)).toEqual([1, 3]);
  });

  it('two opens of a new file at once create it once', async () => {
    let creations = 0;
    const dbs = await Promise.all(
      [file(), file()].map((driver) =>
        openDatabase(countedAppV3('creator'), driver, {
          migrations: {
            onCreate: async (m) => {
              creations++;
              await m.createAll();
            },
          },
        }),
      ),
    );
    expect(creations).toBe(1);
    for (const db of dbs) expect(await storedVersion(db)).toBe(3);
  });

  it('two processes on the same file at once migrate it once', async () => {
    await (await openDatabase(countedAppV1, file())).close();
    await openInProcesses(2, { MIGRATE_DIALECT: 'sqlite', MIGRATE_TARGET: path });
    const db = await openDatabase(countedAppV3('check'), file());
    const runs = await expectMigratedOnce([db]);
    expect(runs.map((r) => r.runner)).toEqual([
      expect.stringMatching(/^process \d+$/),
      expect.stringMatching(/^process \d+$/),
    ]);
  });
});
