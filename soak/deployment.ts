/**
 * The database one soak run keeps its server data in, made fresh for the run and removed after
 * it: a PGlite data folder in a temp dir, or a schema (namespace) of its own on the PostgreSQL
 * server of `DATABASE_URL`. On PostgreSQL the harness also holds a connection pool of its own for
 * raw SQL (another program writing straight to the tables, also while the server is down) and an
 * admin connection that can `pg_terminate_backend` the server's sessions, which it finds by their
 * application_name.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgres } from '../src/drivers/node-postgres/index.js';
import { type Database, openDatabase } from '../src/index.js';
import type { SoakSchema } from './schema.js';

/**
 * Which database the server runs on (`--db`).
 *
 * @example
 *   const kind: DatabaseKind = process.env.DATABASE_URL ? 'postgres' : 'pglite';
 */
export type DatabaseKind = 'pglite' | 'postgres';

/**
 * One run's database.
 *
 * @example
 *   const deployment = await makeDeployment('postgres', s, 7);
 *   SoakChild.fork('./server-process.ts', [s.variant, ...deployment.serverArgs], { name: 'server' });
 *   await deployment.dispose();
 */
export interface Deployment {
  readonly kind: DatabaseKind;
  /** The server process's arguments after the variant. */
  readonly serverArgs: readonly string[];
  /** PostgreSQL: a Database on a pool of the harness's own, for raw SQL (open once the tables exist). */
  direct(): Promise<Database<any> | undefined>;
  /** PostgreSQL: terminates every session of the server; returns how many. PGlite: 0. */
  terminateServerSessions(): Promise<number>;
  /** Closes the harness's connections and drops the schema, or removes the folder. */
  dispose(): Promise<void>;
}

/**
 * Makes a fresh database for one run (a name with the seed, the pid and random bytes).
 *
 * @example
 *   const deployment = await makeDeployment('pglite', s, 1);
 */
export async function makeDeployment(kind: DatabaseKind, s: SoakSchema, seed: number): Promise<Deployment> {
  if (kind === 'pglite') {
    const dir = mkdtempSync(join(tmpdir(), `syncline-soak-${seed}-`));
    return {
      kind,
      serverArgs: ['pglite', dir],
      direct: async () => undefined,
      terminateServerSessions: async () => 0,
      async dispose() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const base = process.env.DATABASE_URL;
  if (!base) throw new Error('soak: --db postgres needs DATABASE_URL');
  const tag = `soak_${seed}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const url = new URL(base);
  url.searchParams.set('application_name', tag);
  const admin = new pg.Client({ connectionString: base });
  admin.on('error', () => {});
  await admin.connect();
  let direct: Database<any> | undefined;
  return {
    kind,
    serverArgs: ['postgres', url.toString(), tag],
    async direct() {
      direct ??= await openDatabase(
        s.schema,
        postgres({
          connectionString: base,
          schema: tag,
          poolConfig: { max: 2, application_name: `${tag}_direct` },
        }),
        { migrations: { enabled: false } },
      );
      return direct;
    },
    async terminateServerSessions() {
      const result = await admin.query(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [tag],
      );
      return result.rows[0].n as number;
    },
    async dispose() {
      await direct?.close().catch(() => {});
      await admin
        .query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 OR application_name = $2',
          [tag, `${tag}_direct`],
        )
        .catch(() => {});
      await admin.query(`DROP SCHEMA IF EXISTS "${tag}" CASCADE`).catch(() => {});
      await admin.end().catch(() => {});
    },
  };
}
