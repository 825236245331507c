import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { integer, schema, table } from '../../src/index.js';
import { cliApp, synclineModule } from '../support/cli-app.js';
import { freePort } from '../support/haproxy.js';
import { dropLogicalSchema, LOGICAL_URL_VARIABLE, logicalSchemaName } from '../support/logical-cluster.js';
import { ShapeRecorder } from '../support/logical-recorder.js';
import { requireAll } from '../support/requirements.js';
import { type ServeProcess, startServeProcess } from '../support/serve-process.js';
import { logicalAvailable } from '../support/sync-server.js';

/**
 * `syncline serve --capture logical` killed with SIGKILL in the middle of a stream of backend
 * writes, and started again: the consumer resumes from what it recorded, so every change reaches a
 * client exactly once, in commit order, through the change log (no fresh snapshot). The writes go
 * on while no server runs: the slot keeps them.
 */

const items = table('items', { id: integer().primaryKey(), n: integer().notNull() });
const killSchema = schema({ items }, { version: 1 });
const SCHEMA_MODULE = `import { integer, schema, table } from '${synclineModule}';
export const items = table('items', { id: integer().primaryKey(), n: integer().notNull() });
export const appSchema = schema({ items }, { version: 1 });
export const rules = { items: { read: () => true, write: () => true } };
`;
const SECRET = 'logical-kill-secret-of-at-least-32-bytes';
const TRANSACTIONS = 400;
const ROWS_EACH = 5;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

describe.skipIf(!logicalAvailable && !requireAll)('logical capture: a killed server', () => {
  it('SIGKILL mid-stream, then a restart: every change reaches the client exactly once, in commit order', async () => {
    const base = process.env[LOGICAL_URL_VARIABLE]!;
    const namespace = logicalSchemaName();
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${namespace}"`);
    await admin.end();
    cleanups.push(() => dropLogicalSchema(base, namespace));
    const url = new URL(base);
    url.searchParams.set('options', `-c search_path=${namespace}`);
    const app = cliApp('syncline-logical-kill-');
    cleanups.push(async () => app.remove());
    writeFileSync(`${app.dir}/schema.ts`, SCHEMA_MODULE);
    const port = await freePort();
    const serve = async () => {
      const served = await startServeProcess(app.dir, [
        '--schema',
        'schema.ts',
        '--database',
        url.href,
        '--port',
        String(port),
        '--jwt-secret',
        SECRET,
        '--capture',
        'logical',
        '--log-level',
        'warn',
      ]);
      cleanups.push(async () => void (await served.stop('SIGKILL')));
      return served;
    };
    let served: ServeProcess = await serve();
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u1')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    const recorder = new ShapeRecorder(killSchema, 'items', 'id', token);
    await recorder.connect(served.url);

    // One backend commits transactions of ROWS_EACH rows one after the other: n counts up. It goes
    // on while the server is killed, down, and starting again.
    const writer = new pg.Client({ connectionString: url.href });
    await writer.connect();
    cleanups.push(() => writer.end());
    let killed!: () => void;
    const kill = new Promise<void>((resolve) => {
      killed = resolve;
    });
    const writing = (async () => {
      for (let i = 0; i < TRANSACTIONS; i++) {
        // The rest is written while the server is down and starting again.
        if (i === TRANSACTIONS / 4) await kill;
        const first = i * ROWS_EACH + 1;
        await writer.query('INSERT INTO items (id, n) SELECT g, g FROM generate_series($1::int, $2::int) g', [
          first,
          first + ROWS_EACH - 1,
        ]);
        if (i % 10 === 0) await sleep(5);
      }
    })();

    await recorder.until((r) => r.rows.size >= 200, 20_000, 'the first 200 rows');
    expect(await served.stop('SIGKILL')).toBe('SIGKILL');
    killed();
    await recorder.close();
    await sleep(300);
    served = await serve();
    await recorder.connect(served.url);
    await writing;
    const total = TRANSACTIONS * ROWS_EACH;
    await recorder.until((r) => r.rows.size >= total, 30_000, 'every row after the restart');
    await recorder.close();

    const inserted = recorder.events.map((e) => Number(e.key));
    expect(recorder.events.every((e) => e.kind === 'insert')).toBe(true);
    // Exactly once, in commit order, and through the log: the only snapshot is the first, empty one.
    expect(inserted).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(recorder.snapshots).toBe(1);
    expect(served.stderr()).not.toContain('"level":"error"');
  }, 90_000);
});
