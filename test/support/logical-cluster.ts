import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './haproxy.js';

const run = promisify(execFile);

/** Where PostgreSQL's server programs are: `PG_BIN`, else Debian's PostgreSQL 15. */
export function postgresBin(): string {
  return process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
}

/** True when this machine can start a throwaway PostgreSQL cluster (initdb and pg_ctl are there). */
export const logicalClusterPossible = existsSync(join(postgresBin(), 'initdb'));

/**
 * The environment variable through which the global setup hands its cluster's URL to the test
 * workers (and `SYNCLINE_LOGICAL_URL` set by hand points the tests at a cluster of one's own).
 */
export const LOGICAL_URL_VARIABLE = 'SYNCLINE_LOGICAL_URL';

/**
 * A PostgreSQL cluster of its own with `wal_level = logical`, for the logical-replication capture
 * tests (the shared server runs with `wal_level = replica`): its URL (trust auth, user postgres,
 * database postgres) and `stop()`, which stops it and removes its files.
 *
 * @example
 *   const cluster = await startLogicalCluster();
 *   try { ... cluster.url ... } finally { await cluster.stop(); }
 */
export interface LogicalCluster {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Runs a PostgreSQL program as the postgres user when we are root (initdb refuses root). */
function asPostgres(program: string, args: string[]) {
  const path = join(postgresBin(), program);
  return process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', path, ...args]) : run(path, args);
}

/**
 * Starts a throwaway cluster (initdb into a temporary directory, then pg_ctl on a free port on
 * 127.0.0.1) with `wal_level = logical` and room for 20 replication slots and senders. About a
 * second on a quiet 2-core machine. Whatever fails on the way, the directory is removed.
 *
 * @example
 *   const cluster = await startLogicalCluster();
 */
export async function startLogicalCluster(): Promise<LogicalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-logical-'));
  const data = join(dir, 'data');
  const removeAll = () => rmSync(dir, { recursive: true, force: true });
  try {
    if (process.getuid?.() === 0) chownSync(dir, ...postgresIds());
    await asPostgres('initdb', ['-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '-D', data]);
    const port = await freePort();
    const options = [
      `-p ${port}`,
      `-k ${dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c wal_level=logical',
      '-c max_replication_slots=20',
      '-c max_wal_senders=20',
      '-c max_connections=300',
      '-c fsync=off',
      '-c full_page_writes=off',
    ].join(' ');
    await asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-o', options, 'start']);
    let stopped: Promise<void> | undefined;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      stop() {
        stopped ??= asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
          .then(
            () => {},
            () => {},
          )
          .finally(removeAll);
        return stopped;
      },
    };
  } catch (error) {
    removeAll();
    throw error;
  }
}

function postgresIds(): [number, number] {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return [id('-u'), id('-g')];
}

/** A schema name of its own for one test server on the logical cluster. */
export function logicalSchemaName(): string {
  return `logical_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Removes what a test server in logical mode left on the cluster: its replication slot (after
 * ending the walsender that may still hold it), its publication and its schema. Slots are few
 * (20) and each holds WAL back, so every test gives its own back.
 *
 * @example
 *   await dropLogicalSchema(url, 'logical_abc');
 */
export async function dropLogicalSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    const state = await client.query(`SELECT to_regclass($1)::text AS present`, [
      `"${schema}"._syncline_logical_state`,
    ]);
    const slots = state.rows[0]?.present
      ? (await client.query(`SELECT slot FROM "${schema}"._syncline_logical_state`)).rows.map(
          (r) => r.slot as string,
        )
      : [];
    for (const slot of slots) {
      for (let attempt = 0; attempt < 100; attempt++) {
        const found = await client.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [
          slot,
        ]);
        if (found.rows.length === 0) break;
        if (found.rows[0].active_pid !== null) {
          await client.query('SELECT pg_terminate_backend($1)', [found.rows[0].active_pid]);
          await new Promise((resolve) => setTimeout(resolve, 50));
          continue;
        }
        await client.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
      }
      await client.query(`DROP PUBLICATION IF EXISTS "${slot}"`);
    }
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
