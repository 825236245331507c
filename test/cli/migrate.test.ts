import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pglite } from '../../src/drivers/pglite/index.js';
import { openDatabase, schema, sql, table, text, uuid } from '../../src/index.js';
import { cliApp, synclineModule } from '../support/cli-app.js';

/**
 * `syncline migrate`: brings a database to the schema's version without serving (drizzle-kit's
 * migrate, drift's schema steps): a new one gets every table, an older one runs the schema's
 * steps, and one at the version is left alone, each saying so in one line.
 */

const appDir = cliApp('syncline-migrate-');
const app = appDir.dir;
const v1 = `import { schema, table, text, uuid } from '${synclineModule}';
export const notes = table('notes', { id: uuid().primaryKey(), body: text().notNull() });
export const appSchema = schema({ notes }, { version: 1 });
`;
const v2 = `import { schema, table, text, uuid } from '${synclineModule}';
export const notes = table('notes', { id: uuid().primaryKey(), body: text().notNull(), tag: text() });
export const appSchema = schema({ notes }, {
  version: 2,
  migrations: { 2: async (m) => { await m.addColumn(notes, notes.tag); } },
});
`;
afterAll(appDir.remove);

function migrateCli(file: string): { code: number | null; stdout: string; stderr: string } {
  return appDir.cli('migrate', '--schema', file, '--database', 'data');
}

describe('syncline migrate', () => {
  // Three CLI processes, each opening PGlite (seconds each on a loaded machine).
  it('creates a new database, migrates an older one, and leaves one at the version alone', {
    timeout: 120_000,
  }, async () => {
    writeFileSync(join(app, 'v1.ts'), v1);
    writeFileSync(join(app, 'v2.ts'), v2);
    const created = migrateCli('v1.ts');
    expect(created.stderr).toBe('');
    expect(created.stdout).toBe('syncline: created data at schema version 1\n');
    const migrated = migrateCli('v2.ts');
    expect(migrated.stdout).toBe(
      'syncline: migrating data: step 1 of 1, to version 2\nsyncline: migrated data from schema version 1 to 2\n',
    );
    expect(migrateCli('v2.ts').stdout).toBe('syncline: data is at schema version 2 already\n');

    const notes = table('notes', { id: uuid().primaryKey(), body: text().notNull(), tag: text() });
    const db = await openDatabase(schema({ notes }, { version: 2 }), pglite({ dataDir: join(app, 'data') }), {
      migrations: { enabled: false },
    });
    const columns = await db.execute<{ column_name: string }>(
      sql`SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY ordinal_position`,
    );
    expect(columns.map((c) => c.column_name)).toEqual(['id', 'body', 'tag']);
    await db.close();
  });
});
