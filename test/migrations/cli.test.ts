import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatSchemaSnapshot, type SchemaSnapshot } from '../../src/index.js';
import { cliApp, cliSource, root, synclineModule } from '../support/cli-app.js';

/** An app folder of its own in the system's temp dir, as `npx syncline` would find it. */
const appDir = cliApp('syncline-cli-');
const app = appDir.dir;
const cli = appDir.cli;
afterAll(appDir.remove);

/** Writes the app's schema module: one table, at a version, with an optional extra column. */
function writeSchema(file: string, version: number, extra = '') {
  writeFileSync(
    join(app, file),
    `import { integer, schema, table, text } from '${synclineModule}';
export const items = table('items', { id: integer().primaryKey(), name: text().notNull()${extra} });
export const appSchema = schema({ items }, { version: ${version} });
`,
  );
}

const snapshotAt = (version: number): string => readFileSync(join(app, `schemas/v${version}.json`), 'utf8');

describe('syncline schema export', () => {
  it('writes the schema of the current version to <out>/v<version>.json and says so', () => {
    writeSchema('schema.ts', 1);
    const { code, stdout, stderr } = cli('schema', 'export', '--schema', 'schema.ts', '--out', 'schemas');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('wrote schemas/v1.json (schema version 1)');
    const text = snapshotAt(1);
    const snapshot = JSON.parse(text) as SchemaSnapshot;
    expect(snapshot).toMatchObject({ format: 1, version: 1, tables: [{ key: 'items', name: 'items' }] });
    expect(snapshot.tables[0]!.columns.map((c) => c.name)).toEqual(['id', 'name']);
    expect(text).toBe(formatSchemaSnapshot(snapshot));
  });

  it('does nothing when the snapshot of that version is already there with the same content', () => {
    const before = snapshotAt(1);
    const { code, stdout } = cli('schema', 'export', '--schema', 'schema.ts', '--out', 'schemas');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('schemas/v1.json is up to date (schema version 1)');
    expect(snapshotAt(1)).toBe(before);
    // Content counts, not layout: a snapshot a formatter rewrapped is still the same snapshot.
    writeFileSync(join(app, 'schemas/v1.json'), JSON.stringify(JSON.parse(before)));
    expect(cli('schema', 'export', '--schema', 'schema.ts', '--out', 'schemas').stdout).toContain(
      'up to date',
    );
    writeFileSync(join(app, 'schemas/v1.json'), before);
  });

  it('refuses to change a snapshot of the same version without --force, and overwrites with it', () => {
    const before = snapshotAt(1);
    writeSchema('schema.ts', 1, ', note: text()');
    const refused = cli('schema', 'export', '--schema', 'schema.ts', '--out', 'schemas');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain(
      'schemas/v1.json already holds a different snapshot of version 1, and a released version must not change',
    );
    expect(refused.stderr).toContain('schema({...}, { version: 2 })');
    expect(refused.stderr).toContain('--force');
    expect(snapshotAt(1)).toBe(before);

    const forced = cli('schema', 'export', '--schema', 'schema.ts', '--out', 'schemas', '--force');
    expect(forced.code).toBe(0);
    expect(forced.stdout.trim()).toBe('overwrote schemas/v1.json (schema version 1)');
    expect(JSON.parse(snapshotAt(1)).tables[0].columns.map((c: { name: string }) => c.name)).toEqual([
      'id',
      'name',
      'note',
    ]);
  });

  it('writes a new file for a new version, next to the old ones', () => {
    writeSchema('schema.ts', 2, ', note: text(), due: integer()');
    const { code, stdout } = cli('schema', 'export', '-s', 'schema.ts', '-o', 'schemas');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('wrote schemas/v2.json (schema version 2)');
    expect(JSON.parse(snapshotAt(2)).version).toBe(2);
    expect(JSON.parse(snapshotAt(1)).version).toBe(1);
  });

  it('loads JavaScript modules too, and creates the output folder', () => {
    writeFileSync(
      join(app, 'schema.mjs'),
      `import { schema, table, text } from '${synclineModule}';
export default schema({ notes: table('notes', { body: text() }) }, { version: 4 });
`,
    );
    const { code, stdout } = cli('schema', 'export', '--schema', 'schema.mjs', '--out', 'out/deep');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('wrote out/deep/v4.json (schema version 4)');
    expect(existsSync(join(app, 'out/deep/v4.json'))).toBe(true);
  });

  it('picks one of several schemas with --export, and says clearly when it cannot pick', () => {
    writeFileSync(
      join(app, 'two.ts'),
      `import { schema, table, text } from '${synclineModule}';
const notes = table('notes', { body: text() });
export const clientSchema = schema({ notes }, { version: 5 });
export const serverSchema = schema({ notes }, { version: 6 });
export const notSchema = 42;
`,
    );
    const several = cli('schema', 'export', '--schema', 'two.ts', '--out', 'two');
    expect(several.code).toBe(1);
    expect(several.stderr.trim()).toBe(
      'syncline: two.ts exports several schemas (clientSchema, serverSchema): choose one with --export <name>',
    );
    const picked = cli('schema', 'export', '--schema', 'two.ts', '--out', 'two', '--export', 'serverSchema');
    expect(picked.code).toBe(0);
    expect(picked.stdout.trim()).toBe('wrote two/v6.json (schema version 6)');
    expect(
      cli('schema', 'export', '--schema', 'two.ts', '--out', 'two', '--export', 'nope').stderr,
    ).toContain('two.ts has no export named "nope" (its schema exports: clientSchema, serverSchema)');
    expect(
      cli('schema', 'export', '--schema', 'two.ts', '--out', 'two', '--export', 'notSchema').stderr,
    ).toContain('the export "notSchema" of two.ts is not a schema made with schema({...})');
  });

  it('says what is wrong with a module that exports no schema, or does not exist', () => {
    writeFileSync(join(app, 'none.ts'), 'export const answer = 42;\n');
    const none = cli('schema', 'export', '--schema', 'none.ts', '--out', 'schemas');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(
      'none.ts exports no schema: export the result of schema({...}, { version })',
    );
    const missing = cli('schema', 'export', '--schema', 'missing.ts', '--out', 'schemas');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('the schema module missing.ts does not exist');
    const noOption = cli('schema', 'export', '--out', 'schemas');
    expect(noOption.code).toBe(1);
    expect(noOption.stderr).toContain("required option '-s, --schema <file>' not specified");
  });
});

describe('syncline', () => {
  it('answers an unknown command with the error and the help', () => {
    const top = cli('nope');
    expect(top.code).toBe(1);
    expect(top.stderr).toContain("error: unknown command 'nope'");
    expect(top.stderr).toContain('Usage: syncline [options] [command]');
    expect(top.stderr).toContain('schema');
    const sub = cli('schema', 'nope');
    expect(sub.code).toBe(1);
    expect(sub.stderr).toContain("error: unknown command 'nope'");
    expect(sub.stderr).toContain('Usage: syncline schema [options] [command]');
    expect(sub.stderr).toContain('export [options]');
  });

  it('prints its version and the help of each command', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(cli('--version').stdout.trim()).toBe(pkg.version);
    const help = cli('schema', 'export', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--schema <file>');
    expect(help.stdout).toContain('--force');
  });

  it('is the package bin, a node script built to dist/cli/main.js', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ syncline: 'dist/cli/main.js' });
    expect(readFileSync(cliSource, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});
