import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What the test suites need beyond `npm install`, and whether this machine has it: a PostgreSQL
 * server (`DATABASE_URL`), a Chromium (`CHROMIUM_PATH`, else Debian's /usr/bin/chromium) and
 * HAProxy (`HAPROXY_PATH`, else Debian's /usr/sbin/haproxy, the load balancer in front of several
 * sync servers). A
 * suite that needs what is missing is skipped, and the run says so in one line; with
 * `SYNCLINE_TEST_ALL=1` (CI sets it) a missing requirement fails the run instead.
 *
 * @example
 *   describe.skipIf(!requirements.chromium.present)('the todo app in Chromium', () => { ... });
 */
export const requirements = {
  postgres: {
    present: Boolean(process.env.DATABASE_URL),
    what: 'the PostgreSQL server suites',
    how: 'set DATABASE_URL=postgres://user@127.0.0.1:5432/test',
  },
  chromium: {
    present: existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'),
    what: 'the Chromium suites (browser driver, todo app)',
    how: 'install chromium with apt-get, or set CHROMIUM_PATH',
  },
  haproxy: {
    present: existsSync(haproxyPath()),
    what: 'the several-servers suite (three sync servers behind HAProxy)',
    how: 'apt-get install -y --no-install-recommends haproxy, or set HAPROXY_PATH',
  },
  initdb: {
    present:
      Boolean(process.env.SYNCLINE_LOGICAL_URL) ||
      existsSync(join(process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin', 'initdb')),
    what: 'the logical-replication capture suites (a throwaway cluster with wal_level = logical)',
    how: "install PostgreSQL's server programs (initdb, pg_ctl), set PG_BIN to their directory, or SYNCLINE_LOGICAL_URL to such a cluster",
  },
} as const;

/**
 * Where the HAProxy binary is: `HAPROXY_PATH`, else Debian's package's.
 *
 * @example
 *   spawn(haproxyPath(), ['-db', '-f', configFile]);
 */
export function haproxyPath(): string {
  return process.env.HAPROXY_PATH ?? '/usr/sbin/haproxy';
}

/** True when every suite must run: a missing requirement is then an error, not a skip. */
export const requireAll = process.env.SYNCLINE_TEST_ALL === '1';

/**
 * The one line that says what this run skips and how to run it, or undefined when nothing is
 * skipped. Throws when something is missing and `SYNCLINE_TEST_ALL=1`.
 *
 * @example
 *   const line = skippedSuites(); if (line) console.log(line);
 */
export function skippedSuites(): string | undefined {
  const missing = Object.values(requirements).filter((r) => !r.present);
  if (missing.length === 0) return undefined;
  const list = missing.map((r) => `${r.what}: ${r.how}`).join('; ');
  if (requireAll) {
    throw new Error(`SYNCLINE_TEST_ALL=1 but this machine lacks what some suites need: ${list}`);
  }
  return `syncline tests: skipping ${list}; SYNCLINE_TEST_ALL=1 makes them required`;
}
