import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/cli/commands/migrate.js';
import { serve } from '../../src/cli/commands/serve.js';
import { shownDatabase } from '../../src/cli/database-option.js';
import { cliApp, synclineModule } from '../support/cli-app.js';

/**
 * The CLI's errors name the option, the value and what would be valid: a database URL with a
 * typo in its scheme is not taken for a PGlite folder, an unreachable database says it is the
 * database, a log level or a secret that will not do says so before anything starts.
 */

const SECRET = 'cli-errors-test-secret-of-32-bytes-or-more';
const appDir = cliApp('syncline-cli-');
const app = appDir.dir;
writeFileSync(
  join(app, 'schema.ts'),
  `import { schema, table, text, uuid } from '${synclineModule}';
export const notes = table('notes', { id: uuid().primaryKey(), body: text().notNull() });
export const appSchema = schema({ notes }, { version: 1 });
`,
);
afterAll(appDir.remove);

const base = { schema: 'schema.ts', jwtSecret: SECRET, port: 0, cwd: app };

describe('syncline serve and migrate: errors that say what to do', () => {
  it('refuses a database URL of an unknown scheme (a typo) instead of making a folder of it', async () => {
    await expect(serve({ ...base, database: 'postgress://app:hunter2@localhost/app' })).rejects.toThrow(
      '--database "postgress://app:***@localhost/app": "postgress://" is not a database URL syncline opens; give a postgres:// (or postgresql://) URL',
    );
    expect(existsSync(join(app, 'postgress:'))).toBe(false);
    await expect(migrate({ ...base, database: 'mysql://localhost/app' })).rejects.toThrow(
      /--database "mysql:\/\/localhost\/app"/,
    );
  });

  it('refuses a postgres URL that is not a valid URL, naming the option and the value', async () => {
    await expect(serve({ ...base, database: 'postgres://app:pa ss@local host:99999/app' })).rejects.toThrow(
      /--database "postgres:\/\/app:\*\*\*@local host:99999\/app" is not a valid URL; expected postgres:\/\/user:password@host:port\/database/,
    );
  });

  it('says that the database could not be reached, and which one', async () => {
    const error = await serve({ ...base, database: 'postgres://postgres:secret@127.0.0.1:1/test' }).catch(
      (e) => e,
    );
    expect(error.message).toMatch(
      /^could not open the database given by --database "postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test": .*ECONNREFUSED.*; check that PostgreSQL is running there/,
    );
    expect(error.message).not.toMatch(/secret/);
    const migrating = await migrate({ ...base, database: 'postgres://127.0.0.1:1/test' }).catch((e) => e);
    expect(migrating.message).toMatch(/could not open the database given by --database/);
  });

  it('refuses an unknown log level and a short secret, naming the option', async () => {
    await expect(serve({ ...base, database: 'data/a', logLevel: 'loud' as never })).rejects.toThrow(
      '--log-level "loud" is not a log level; use one of silent, error, warn, info, debug',
    );
    await expect(serve({ ...base, database: 'data/a', jwtSecret: 'abc' })).rejects.toThrow(
      '--jwt-secret is 3 bytes long; an HS256 secret needs at least 32 bytes of randomness (make one with: openssl rand -base64 32)',
    );
  });

  it('hides a password when it shows a database URL', () => {
    expect(shownDatabase('postgres://app:s3cret@db:5432/app')).toBe('postgres://app:***@db:5432/app');
    expect(shownDatabase('postgres://app@db/app')).toBe('postgres://app@db/app');
    expect(shownDatabase('./data')).toBe('./data');
  });

  it('exits 1 with the message on stderr, from the command line', () => {
    const result = appDir.cli('migrate', '--schema', 'schema.ts', '--database', 'postgress://localhost/x');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^syncline: --database "postgress:\/\/localhost\/x": "postgress:\/\/" is not a database URL/,
    );
  });
});
