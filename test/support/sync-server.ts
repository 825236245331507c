import { randomUUID } from 'node:crypto';
import type { PGlite } from '@electric-sql/pglite';
import { SignJWT } from 'jose';
import pg from 'pg';
import { onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { type Schema, sql } from '../../src/index.js';
import {
  type HelloMessage,
  PROTOCOL_VERSION,
  parseServerMessage,
  type ServerMessage,
  type ShapeJson,
} from '../../src/sync/protocol/messages.js';
import type { JsonRow } from '../../src/sync/protocol/value-codec.js';
import {
  createSyncServer,
  type SyncRules,
  type SyncServer,
  type SyncServerOptions,
} from '../../src/sync/server/index.js';
import { testDrivers } from './drivers.js';
import { dropLogicalSchema, LOGICAL_URL_VARIABLE, logicalSchemaName } from './logical-cluster.js';

/** The HS256 secret every test server trusts; `token()` signs with it. */
export const TEST_JWT_SECRET = 'syncline-test-secret-of-at-least-32-bytes!';

/** True when DATABASE_URL names a real PostgreSQL server the tests may use. */
export const postgresAvailable = testDrivers.some((d) => d.name === 'postgres');

/**
 * The kinds of server a test can start: on PGlite, on the real PostgreSQL server (both with
 * trigger capture), and `logical`: PostgreSQL with `wal_level = logical` (the throwaway cluster the
 * global setup starts, `SYNCLINE_LOGICAL_URL`) with `capture: 'logical'`.
 */
export type ServerKind = 'pglite' | 'postgres' | 'logical';

/** True when a cluster with `wal_level = logical` is there for the `logical` kind. */
export const logicalAvailable = Boolean(process.env[LOGICAL_URL_VARIABLE]);

/**
 * Which databases the server tests run on: PGlite always, the real server when DATABASE_URL is set.
 *
 * @example
 *   for (const driver of serverDrivers) describe(`sync [${driver}]`, () => { ... });
 */
export const serverDrivers: readonly ('pglite' | 'postgres')[] = postgresAvailable
  ? ['pglite', 'postgres']
  : ['pglite'];

/**
 * With SYNCLINE_TEST_LOGICAL=1 every test server on the real PostgreSQL server (`postgres`) runs
 * on the logical cluster with `capture: 'logical'` instead: the whole sync suite and the soak in
 * logical mode, with one variable (docs/operations.md).
 */
const postgresIsLogical = process.env.SYNCLINE_TEST_LOGICAL === '1';

/**
 * A sync server on 127.0.0.1 (a free port) for one test, on a database of its own.
 *
 * @example
 *   const t = await startTestServer(appSchema);
 *   const client = await RawClient.connect(t.url);
 *   client.send(helloMessage(appSchema, { token: await t.token('u1'), shapes: [{ id: 'todos', table: 'todos' }] }));
 */
export interface TestServer<S extends Schema> {
  readonly server: SyncServer<S>;
  readonly url: string;
  /** The PostgreSQL schema (namespace) the server's tables are in. */
  readonly namespace: string;
  /** The kind of server (which database, which capture; `postgres` may run as `logical`). */
  readonly kind: ServerKind;
  /** A JWT for `userId`, signed with `TEST_JWT_SECRET`, valid for an hour (or `expiresIn`). */
  token(userId: string, claims?: Record<string, unknown>, expiresIn?: string | number): Promise<string>;
  /**
   * Runs SQL on a connection of its own, past the server (another program writing straight to
   * PostgreSQL): a new pg connection on the real server, the PGlite instance itself on PGlite.
   */
  external(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Real server only: a pg client of its own on the server's schema (closed when the test ends). */
  connectExternal(): Promise<pg.Client>;
  /**
   * Resolves once the server has read (ticked) every change committed so far, so a snapshot taken
   * next holds them and none of them arrives again as a change.
   */
  settled(): Promise<void>;
  /** Closes the server and drops its database. Also runs when the test ends. */
  close(): Promise<void>;
}

/**
 * How `startTestServer` sets up its server: the database, rules, auth (a fixed HS256 secret by
 * default), limits, logging (silent by default) and path, as `createSyncServer` takes them.
 *
 * @example
 *   await startTestServer(appSchema, { driver: 'postgres', limits: { snapshotChunkRows: 2 } });
 */
export interface TestServerOptions<S extends Schema> {
  /** 'pglite' (default: a schema in the test file's shared PGlite) or 'postgres' (needs DATABASE_URL). */
  readonly driver?: ServerKind;
  /** Logical mode's settings, for the `logical` kind. */
  readonly logical?: SyncServerOptions<S>['logical'];
  readonly rules?: SyncRules<S>;
  readonly mutators?: SyncServerOptions<S>['mutators'];
  readonly auth?: SyncServerOptions<S>['auth'];
  readonly limits?: SyncServerOptions<S>['limits'];
  readonly log?: SyncServerOptions<S>['log'];
  readonly path?: string;
  readonly clientSchemas?: SyncServerOptions<S>['clientSchemas'];
  readonly monitoring?: SyncServerOptions<S>['monitoring'];
  /**
   * Real server only: run on the database (schema) of another test server, as a second instance
   * of one deployment. Its database is dropped by the server that made it.
   */
  readonly shareWith?: TestServer<Schema>;
}

function atTestEnd(cleanup: () => Promise<void>): void {
  try {
    onTestFinished(cleanup);
  } catch {
    // Started outside a test (in beforeAll): the caller closes it.
  }
}

/**
 * Starts a sync server for a test on loopback: on PGlite by default, on the real PostgreSQL server
 * with `driver: 'postgres'`. Logs are silent unless `log` says otherwise. The server is closed and
 * its database dropped when the test ends (or by `close()`).
 *
 * @example
 *   const t = await startTestServer(appSchema, { rules, driver: 'postgres' });
 */
export async function startTestServer<S extends Schema>(
  schema: S,
  options: TestServerOptions<S> = {},
): Promise<TestServer<S>> {
  const name: ServerKind = options.shareWith ? options.shareWith.kind : (options.driver ?? 'pglite');
  const baseUrl = name === 'logical' ? process.env[LOGICAL_URL_VARIABLE] : process.env.DATABASE_URL;
  const testDriver = testDrivers.find((d) => d.name === name);
  if (name === 'logical' && !baseUrl) {
    throw new Error(
      'startTestServer: the logical kind needs a cluster with wal_level = logical (SYNCLINE_LOGICAL_URL)',
    );
  }
  if (!testDriver && name !== 'logical') {
    throw new Error(`startTestServer: the ${name} driver needs DATABASE_URL to be set`);
  }
  const logicalSchema = logicalSchemaName();
  const { driver, dispose } = options.shareWith
    ? {
        driver: postgres({ connectionString: baseUrl, schema: options.shareWith.namespace }),
        dispose: async () => {},
      }
    : name === 'logical'
      ? {
          driver: postgres({ connectionString: baseUrl, schema: logicalSchema }),
          dispose: () => dropLogicalSchema(baseUrl!, logicalSchema),
        }
      : testDriver!.create();
  let server: SyncServer<S>;
  try {
    server = await createSyncServer({
      schema,
      database: driver,
      auth: options.auth ?? { jwtSecret: TEST_JWT_SECRET },
      rules: options.rules,
      mutators: options.mutators,
      limits: options.limits,
      log: options.log ?? { level: 'silent' },
      path: options.path,
      clientSchemas: options.clientSchemas,
      monitoring: options.monitoring,
      ...(name === 'logical'
        ? { capture: 'logical' as const, logical: { checkEveryMs: 200, ...options.logical } }
        : {}),
    });
    await server.listen({ port: 0 });
  } catch (error) {
    await driver.close().catch(() => {});
    await dispose();
    throw error;
  }
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= server.close({ timeoutMs: 2000 }).then(dispose);
    return closed;
  };
  atTestEnd(close);
  const [{ schema: namespace }] = await server.db.execute<{ schema: string }>(
    sql`SELECT current_schema() AS schema`,
  );
  const connectExternal = async () => {
    if (name === 'pglite') throw new Error('connectExternal() needs the real server (driver: "postgres")');
    const client = new pg.Client({
      connectionString: baseUrl,
      options: `-c search_path="${namespace}"`,
    });
    await client.connect();
    atTestEnd(() => client.end().catch(() => {}));
    return client;
  };
  const external = async (text: string, params: unknown[] = []) => {
    if (name === 'pglite') {
      const handle = (driver as unknown as { handle: PGlite }).handle;
      return (await handle.query<Record<string, unknown>>(text, params)).rows;
    }
    const client = await connectExternal();
    try {
      return (await client.query(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  const key = new TextEncoder().encode(TEST_JWT_SECRET);
  const token = (userId: string, claims: Record<string, unknown> = {}, expiresIn: string | number = '1h') =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .setIssuedAt()
      .setExpirationTime(expiresIn)
      .sign(key);
  const settled = async () => {
    const probe = await RawClient.connect(server.url);
    probe.send(helloMessage(schema, { token: await token('settle') }));
    await probe.next('welcome');
    await probe.ping();
    await probe.close();
  };
  return {
    server,
    kind: name,
    url: server.url,
    token,
    settled,
    namespace,
    external,
    connectExternal,
    close,
  };
}

/**
 * A `hello` for `schema`: a fresh client id, the schema's version, no shapes, no cursor, unless
 * `fields` says otherwise.
 *
 * @example
 *   client.send(helloMessage(appSchema, { token, shapes: [{ id: 'lists', table: 'lists' }] }));
 */
export function helloMessage(schema: Schema, fields: Partial<HelloMessage> = {}): HelloMessage {
  return {
    type: 'hello',
    v: PROTOCOL_VERSION,
    clientId: randomUUID(),
    schemaVersion: schema.version,
    shapes: [],
    ...fields,
  };
}

type Of<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

/**
 * A client that speaks the protocol by hand over a real WebSocket: it sends what a test writes and
 * checks every server message with `parseServerMessage`, so a malformed message fails the test.
 * Closed when the test ends.
 *
 * @example
 *   const client = await RawClient.connect(t.url);
 *   client.send(helloMessage(appSchema, { token }));
 *   const welcome = await client.next('welcome');
 */
export class RawClient {
  /** Every message received, in order. */
  readonly received: ServerMessage[] = [];
  /** Resolves with the close code and reason once the socket closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private read = 0;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.received.push(parseServerMessage(data as Buffer));
      this.wake?.();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake?.();
      });
    });
  }

  /** Opens a socket to `url` (with extra request headers); rejects when the server refuses it. */
  static connect(url: string, headers: Record<string, string> = {}): Promise<RawClient> {
    const socket = new WebSocket(url, { headers });
    socket.on('error', () => {});
    const client = new RawClient(socket);
    atTestEnd(() => client.close());
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_request, response) => {
        reject(new Error(`the server answered the upgrade with HTTP ${response.statusCode}`));
        socket.terminate();
      });
      socket.once('error', reject);
    });
  }

  /** Sends a message (as JSON) or raw text. */
  send(message: object | string): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /**
   * The next message not yet read; with `type`, it must be of that type (else the test fails with
   * what came instead). Fails after `timeoutMs`.
   */
  async next<T extends ServerMessage['type']>(type?: T, timeoutMs = 10_000): Promise<Of<T>> {
    const deadline = Date.now() + timeoutMs;
    while (this.read >= this.received.length) {
      if (this.socket.readyState === WebSocket.CLOSED) {
        throw new Error(`the socket closed while waiting for ${type ?? 'a message'}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type ?? 'message'} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    const message = this.received[this.read++]!;
    if (type !== undefined && message.type !== type) {
      throw new Error(`expected a ${type} message, got ${JSON.stringify(message).slice(0, 500)}`);
    }
    return message as Of<T>;
  }

  /** Reads messages until one of `type` comes, returning it (the ones skipped are in `received`). */
  async nextOf<T extends ServerMessage['type']>(type: T, timeoutMs = 10_000): Promise<Of<T>> {
    for (let i = 0; i < 100_000; i++) {
      const message = await this.next(undefined, timeoutMs);
      if (message.type === type) return message as Of<T>;
    }
    throw new Error(`no ${type} message among 100,000`);
  }

  /**
   * Sends a hello and reads `welcome` and every snapshot chunk of `shapes`: the rows by shape id
   * and the position the snapshot was read at.
   */
  async sync(
    hello: HelloMessage,
  ): Promise<{ welcome: Of<'welcome'>; rows: Map<string, JsonRow[]>; position: string | undefined }> {
    this.send(hello);
    const welcome = await this.next('welcome');
    const rows = new Map<string, JsonRow[]>();
    let position: string | undefined;
    const open = new Set(hello.cursor === undefined ? hello.shapes.map((s: ShapeJson) => s.id) : []);
    while (open.size > 0) {
      const chunk = await this.next('snapshot');
      rows.set(chunk.shapeId, [...(rows.get(chunk.shapeId) ?? []), ...chunk.rows]);
      position = chunk.position;
      if (chunk.last) open.delete(chunk.shapeId);
    }
    return { welcome, rows, position };
  }

  /** Sends a ping and returns its pong (skipping the changes before it, which stay in `received`). */
  async ping(id = randomUUID().slice(0, 8)): Promise<Of<'pong'>> {
    this.send({ type: 'ping', v: PROTOCOL_VERSION, id });
    for (let i = 0; i < 100_000; i++) {
      const message = await this.next();
      if (message.type === 'pong' && message.id === id) return message;
    }
    throw new Error('no pong among 100,000 messages');
  }

  /** Closes the socket (if open) and waits for it to close. */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close();
      const timer = setTimeout(() => this.socket.terminate(), 1000);
      await this.closed;
      clearTimeout(timer);
    }
  }
}
