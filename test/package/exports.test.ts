import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The published shape of the package: the subpath exports resolve to the built ESM files with
 * type declarations beside them, and work from plain Node (no TypeScript loader).
 */
describe('package exports', () => {
  it('builds ESM and declarations for every entry point', () => {
    for (const entry of [
      'index',
      'drivers/better-sqlite3/index',
      'drivers/node-postgres/index',
      'drivers/pglite/index',
      'drivers/sqlite-wasm/index',
      'drivers/sqlite-wasm/worker',
      'sync/server/index',
      'sync/client/index',
    ]) {
      expect(existsSync(`${root}/dist/${entry}.js`), `${entry}.js`).toBe(true);
      expect(existsSync(`${root}/dist/${entry}.d.ts`), `${entry}.d.ts`).toBe(true);
    }
  });

  it('resolves syncline, syncline/sqlite, syncline/postgres and syncline/pglite from plain Node', () => {
    const script = `
      const core = await import('syncline');
      const { sqlite } = await import('syncline/sqlite');
      const { postgres, pgTypes } = await import('syncline/postgres');
      const { pglite } = await import('syncline/pglite');
      const items = core.table('items', { id: core.integer().primaryKey(), name: core.text().notNull() });
      const db = await core.openDatabase(core.schema({ items }), sqlite());
      await db.insert(items).values({ id: 1, name: 'built' });
      const rows = await db.select().from(items).where(core.eq(items.id, 1));
      await db.close();
      console.log(JSON.stringify({ rows, kinds: [typeof postgres, typeof pglite, typeof pgTypes.inet] }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual({
      rows: [{ id: 1, name: 'built' }],
      kinds: ['function', 'function', 'function'],
    });
  });

  it('resolves syncline/server, syncline/sync and syncline/react from plain Node', () => {
    const script = `
      const { createSyncServer } = await import('syncline/server');
      const { syncClient } = await import('syncline/sync');
      const { useLiveQuery } = await import('syncline/react');
      console.log(JSON.stringify([typeof createSyncServer, typeof syncClient, typeof useLiveQuery]));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual(['function', 'function', 'function']);
  });
});
