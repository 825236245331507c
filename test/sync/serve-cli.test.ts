import { type ChildProcess, type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { schema, table, text, uuid } from '../../src/index.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import { SYNC_CLOSE_CODES } from '../../src/sync/server/index.js';
import { cliSource, root, synclineModule, tsxLoader } from '../support/cli-app.js';
import { helloMessage, postgresAvailable, RawClient } from '../support/sync-server.js';

/**
 * `npx syncline serve`: starts a sync server from the app's schema module (with its `rules` export)
 * on a PGlite folder or a PostgreSQL URL, prints one line with the URL, and shuts down gracefully
 * on SIGTERM. Without a way to check tokens it refuses to start and says how to give one.
 */

const SECRET = 'serve-cli-test-secret-of-32-bytes-or-more';

const app = mkdtempSync(join(tmpdir(), 'syncline-serve-'));
writeFileSync(join(app, 'package.json'), JSON.stringify({ type: 'module' }));
writeFileSync(
  join(app, 'schema.ts'),
  `import { eq, schema, table, text, uuid } from '${synclineModule}';
export const notes = table('notes', { id: uuid().primaryKey(), owner: text().notNull(), body: text().notNull() });
export const appSchema = schema({ notes }, { version: 1 });
export const rules = { notes: { read: (user) => eq(notes.owner, user.userId), write: () => true } };
`,
);
// The same app with mutators, for --metrics, --status-page and the mutators export.
writeFileSync(
  join(app, 'with-mutators.ts'),
  `import { schema, table, text, uuid } from '${synclineModule}';
import { defineMutators } from '${pathToFileURL(join(root, 'src/sync/client/index.ts')).href}';
export const notes = table('notes', { id: uuid().primaryKey(), owner: text().notNull(), body: text().notNull() });
export const appSchema = schema({ notes }, { version: 1 });
export const mutators = defineMutators({
  addNote: {
    args: (value) => value,
    run: async (tx, { id, body }, ctx) => {
      await tx.insert(notes).values({ id, owner: ctx.location === 'server' ? ctx.user.userId : 'me', body });
    },
  },
});
`,
);
afterAll(() => rmSync(app, { recursive: true, force: true }));

// The same table, to sign tokens and build hellos here.
const notesSchema = schema({
  notes: table('notes', { id: uuid().primaryKey(), owner: text(), body: text() }),
});

async function token(userId: string): Promise<string> {
  const { SignJWT } = await import('jose');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(SECRET));
}

/** Starts `syncline serve` and resolves with the process and the URL it printed. */
async function startServe(
  args: string[],
  viaShell = false,
): Promise<{ child: ChildProcess; url: string; exit: Promise<number | null> }> {
  const command = [process.execPath, '--import', tsxLoader, cliSource, 'serve', ...args];
  // Through a shell that waits for it (`; true`), as `npm run` and `npx` start commands.
  const child = viaShell
    ? spawn('sh', ['-c', `${command.map((a) => `'${a}'`).join(' ')}; true`], {
        cwd: app,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(command[0]!, command.slice(1), { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onTestFinished(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exit;
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      const match = /^syncline: sync server listening on (ws:\/\/\S+)$/.exec(line);
      if (match) resolve(match[1]!);
    });
    void exit.then((code) => reject(new Error(`syncline serve exited with ${code}: ${stderr}`)));
  });
  return { child, url, exit };
}

/** Runs `syncline serve` with `args` until it exits (for the refusals), without SYNCLINE_* variables. */
function serveUntilExit(args: string[]): SpawnSyncReturns<string> {
  const env = { ...process.env };
  delete env.SYNCLINE_JWT_SECRET;
  delete env.SYNCLINE_ADMIN_TOKEN;
  return spawnSync(process.execPath, ['--import', tsxLoader, cliSource, 'serve', ...args], {
    cwd: app,
    encoding: 'utf8',
    env,
  });
}

/** Connects as u1, checks the snapshot holds `bodies` (u1's notes only), then stops the server. */
async function checkServesAndStops(
  served: Awaited<ReturnType<typeof startServe>>,
  bodies: string[] = [],
): Promise<void> {
  const client = await RawClient.connect(served.url);
  const { rows } = await client.sync(
    helloMessage(notesSchema, { token: await token('u1'), shapes: [{ id: 'n', table: 'notes' }] }),
  );
  expect(rows.get('n')!.map((r) => r.body)).toEqual(bodies);
  served.child.kill('SIGTERM');
  expect(await client.closed).toEqual({ code: SYNC_CLOSE_CODES.goingAway, reason: 'server shutting down' });
  expect(await served.exit).toBe(0);
}

describe('syncline serve', () => {
  it('serves a PGlite folder (created if missing) and stops on SIGTERM', async () => {
    const served = await startServe([
      '--schema',
      'schema.ts',
      '--database',
      'data/pglite',
      '--port',
      '0',
      '--jwt-secret',
      SECRET,
    ]);
    expect(served.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/sync$/);
    await checkServesAndStops(served);
  });

  it('stops cleanly when the shell that started it is ended by SIGTERM (npm run, npx)', async () => {
    const served = await startServe(
      ['--schema', 'schema.ts', '--database', 'data/shell', '--port', '0', '--jwt-secret', SECRET],
      true,
    );
    const client = await RawClient.connect(served.url);
    client.send(helloMessage(notesSchema, { token: await token('u1') }));
    await client.next('welcome');
    // The shell dies of the signal; the server under it notices it lost its parent and stops.
    served.child.kill('SIGTERM');
    expect(await client.closed).toEqual({ code: SYNC_CLOSE_CODES.goingAway, reason: 'server shutting down' });
  });

  it.skipIf(!postgresAvailable)(
    'serves a PostgreSQL URL, with the secret from SYNCLINE_JWT_SECRET',
    async () => {
      const namespace = `serve_cli_${process.pid}_${Date.now().toString(36)}`;
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      await admin.query(`CREATE SCHEMA "${namespace}"`);
      onTestFinished(async () => {
        await admin.query(`DROP SCHEMA "${namespace}" CASCADE`);
        await admin.end();
      });
      const url = new URL(process.env.DATABASE_URL!);
      url.searchParams.set('options', `-c search_path=${namespace}`);
      process.env.SYNCLINE_JWT_SECRET = SECRET;
      try {
        const served = await startServe(['--schema', 'schema.ts', '--database', url.href, '--port', '0']);
        // Another program writes straight to PostgreSQL: the user's note reaches the client, the other's does not.
        const client = await RawClient.connect(served.url);
        const { position } = await client.sync(
          helloMessage(notesSchema, { token: await token('u1'), shapes: [{ id: 'n', table: 'notes' }] }),
        );
        await admin.query(`SET search_path TO "${namespace}"`);
        await admin.query(
          `INSERT INTO notes (id, owner, body) VALUES (gen_random_uuid(), 'u1', 'mine'), (gen_random_uuid(), 'u2', 'theirs')`,
        );
        const changes = await client.nextOf('changes');
        expect(changes.from).toBe(position);
        expect(changes.changes.map((c) => c.values?.body)).toEqual(['mine']);
        await client.close();
        await checkServesAndStops(served, ['mine']);
      } finally {
        delete process.env.SYNCLINE_JWT_SECRET;
      }
    },
  );

  it.each([
    ['no-schema.ts', 'export const nothing = 1;\n', /no-schema\.ts exports no schema/],
    [
      'bad-rules.ts',
      `export { appSchema } from './schema.ts';\nexport const rules = 'everyone';\n`,
      /the "rules" export of bad-rules\.ts must be an object of table rules/,
    ],
  ])('refuses a module that is not a server module (%s), saying why', (file, source, message) => {
    writeFileSync(join(app, file), source);
    const result = serveUntilExit(['--schema', file, '--database', 'data/none', '--jwt-secret', SECRET]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
  });

  it("runs the module's mutators, and serves /metrics and /status behind --admin-token", async () => {
    const admin = 'serve-cli-admin-token-0123456789';
    const served = await startServe([
      '--schema',
      'with-mutators.ts',
      '--database',
      'data/pglite-mutators',
      '--port',
      '0',
      '--jwt-secret',
      SECRET,
      '--metrics',
      '--status-page',
      '--admin-token',
      admin,
    ]);
    const http = served.url.replace(/^ws:/, 'http:').replace(/\/sync$/, '');
    expect((await fetch(`${http}/metrics`)).status).toBe(401);
    const metrics = await fetch(`${http}/metrics`, { headers: { Authorization: `Bearer ${admin}` } });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^syncline_connections/m);
    expect((await fetch(`${http}/status`)).headers.get('content-type')).toMatch(/text\/html/);
    expect((await fetch(`${http}/status.json`)).status).toBe(401);

    const client = await RawClient.connect(served.url);
    const clientId = randomUUID();
    await client.sync(
      helloMessage(notesSchema, {
        clientId,
        token: await token('u1'),
        shapes: [{ id: 'n', table: 'notes' }],
      }),
    );
    const hlc = encodeHlc({ wallMs: Date.now(), counter: 0, nodeId: clientId });
    const id = randomUUID();
    client.send({
      type: 'push',
      v: PROTOCOL_VERSION,
      batches: [
        {
          mutationId: 1,
          changes: [],
          mutation: { name: 'addNote', args: { id, body: 'by a mutator' }, hlc, rows: [] },
        },
        { mutationId: 2, changes: [], mutation: { name: 'nope', args: {}, hlc, rows: [] } },
      ],
    });
    const { results } = await client.nextOf('ack');
    expect(results.map((r) => r.status)).toEqual(['applied', 'rejected']);
    // The push's own changes are streamed before its ack.
    const bodies = client.received.flatMap((m) =>
      m.type === 'changes' ? m.changes.map((c) => c.values?.body) : [],
    );
    expect(bodies).toContain('by a mutator');
    served.child.kill('SIGTERM');
    expect(await served.exit).toBe(0);
  });

  it('refuses --status-page without an admin token', () => {
    const result = serveUntilExit([
      '--schema',
      'schema.ts',
      '--database',
      'data/none',
      '--jwt-secret',
      SECRET,
      '--status-page',
    ]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/--status-page needs --admin-token <token> \(or SYNCLINE_ADMIN_TOKEN\)/);
  });

  it('refuses to start without a way to check tokens, and says how to give one', () => {
    const result = serveUntilExit(['--schema', 'schema.ts', '--database', 'data/none']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /syncline: the sync server needs a way to check tokens: pass --jwt-secret <secret> \(or set SYNCLINE_JWT_SECRET\)/,
    );
  });
});
