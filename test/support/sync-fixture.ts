import { SignJWT } from 'jose';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  boolean,
  type Database,
  integer,
  is,
  json,
  openDatabase,
  type Schema,
  schema,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';
import type { AnyTable } from '../../src/schema/table.js';
import {
  type RejectedEvent,
  type SyncClient,
  type SyncClientOptions,
  SyncConnectionError,
  type SyncSocket,
  syncClient,
  type WebSocketConstructor,
} from '../../src/sync/client/index.js';
import { asyncSqlite } from './async-sqlite.js';
import { lists, todos } from './fixtures.js';
import { serverDrivers, TEST_JWT_SECRET, type TestServer } from './sync-server.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * Shared by the end-to-end sync tests (test/sync/e2e-*.test.ts): a schema, sync clients on
 * in-memory better-sqlite3 (synchronous, or wrapped to answer on a later tick like SQLite WASM)
 * that each reach the server through a TCP proxy of their own (so a test can cut or refuse one
 * client's connection), a tap on each client's WebSocket, bounded waits, and table dumps that
 * compare replicas row by row in primary-key order.
 */

/**
 * The SQLite driver an e2e client runs on: 'sync' is better-sqlite3 as apps use it in Node (the
 * client applies server messages without a promise), 'async' is better-sqlite3 answering every
 * statement on a later tick (test/support/async-sqlite.ts), the path browsers take on SQLite WASM.
 */
export type ClientDriverKind = 'sync' | 'async';

/**
 * Both client drivers, for e2e tests to loop over as they loop over `serverDrivers`.
 *
 * @example
 *   for (const server of serverDrivers) for (const client of clientDrivers) describe(`[${server}, ${client}]`, ...);
 */
export const clientDrivers: readonly ClientDriverKind[] = ['sync', 'async'];

/**
 * Every pair of a server driver (`serverDrivers`) and a client driver (`clientDrivers`), server
 * first, for e2e tests that run on them all.
 *
 * @example
 *   for (const [driver, clientDriver] of driverPairs) describe(`sync [${driver}, ${clientDriver} clients]`, ...);
 */
export const driverPairs: readonly (readonly [ServerDriverKind, ClientDriverKind])[] = serverDrivers.flatMap(
  (server) => clientDrivers.map((client) => [server, client] as const),
);

type ServerDriverKind = (typeof serverDrivers)[number];

/**
 * A synced table with a column of most kinds, for edits that collide on rows and columns.
 *
 * @example
 *   await db.insert(items).values({ id: keys[0], title: 'a' });
 */
export const items = table('items', {
  id: uuid().primaryKey(),
  title: text().notNull(),
  qty: integer().notNull().default(0),
  note: text(),
  done: boolean().notNull().default(false),
  tags: json<string[]>().notNull().default([]),
  changedAt: timestamp('changed_at'),
});

/**
 * The schema of the e2e tests: the lists and todos of docs/design.md section 1, and `items`.
 *
 * @example
 *   const t = await startTestServer(e2eSchema, { driver });
 */
export const e2eSchema = schema({ lists, todos, items }, { version: 1 });

/**
 * A client's (or the server's) Database on the e2e schema.
 *
 * @example
 *   const db: E2eDatabase = clients[0].db;
 */
export type E2eDatabase = Database<typeof e2eSchema>;

/**
 * The tables every e2e replica is compared on (by `dumpTables` and `expectConverged`).
 *
 * @example
 *   const dump = await dumpTables(db, e2eTables);
 */
export const e2eTables: readonly AnyTable[] = [lists, todos, items];

/**
 * `n` fixed uuids, the same in every run: a small key space on which clients' writes collide.
 *
 * @example
 *   const keys = fixedKeys(4); // ['00000000-0000-4000-8000-000000000000', ...]
 */
export function fixedKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
}

/**
 * Waits for `work`, failing with `what` when it has not settled within `timeoutMs`. A late
 * rejection of `work` is swallowed (the test has failed already).
 *
 * @example
 *   await within(sync.flush(), 10_000, 'client A to flush');
 */
export async function within<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  work.catch(() => {});
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what} did not happen within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A tap on the WebSockets of one sync client (pass `tap.WebSocket` in its options): it sees every
 * text frame the client sends, and can make frames get lost either way. The sockets stay real `ws`
 * sockets on loopback; the tap only watches and drops, so tests can cut a connection right after
 * a push went out, or after the server committed a push but before its ack arrived.
 *
 * @example
 *   const tap = new SocketTap();
 *   tap.onSend = (text) => { if (text.startsWith('{"type":"push"')) proxy.cutAfterClientBytes(text.length / 2); };
 *   tap.dropIncoming = (text) => text.startsWith('{"type":"ack"');
 */
export class SocketTap {
  /** Called with each frame just before the client sends it. */
  onSend: ((text: string) => void) | undefined;
  /** Incoming frames for which this returns true never reach the client, as if lost. */
  dropIncoming: ((text: string) => boolean) | undefined;
  /** Frames the client sends for which this returns true never leave it, as if lost. */
  dropOutgoing: ((text: string) => boolean) | undefined;
  /** Every `push` frame sent, in order. */
  readonly pushes: string[] = [];
  /** The last 200 frames (`>` sent, `<` received, `x>` / `x` dropped either way), to explain a failure. */
  readonly recent: string[] = [];
  readonly WebSocket: WebSocketConstructor;

  constructor() {
    const tap = this;
    this.WebSocket = class TappedSocket implements SyncSocket {
      private readonly socket: WebSocket;
      constructor(url: string) {
        this.socket = new WebSocket(url);
      }
      get readyState() {
        return this.socket.readyState;
      }
      send(data: string): void {
        const drop = tap.dropOutgoing?.(data) ?? false;
        tap.remember(`${drop ? 'x>' : '>'} ${data}`);
        if (drop) return;
        if (data.startsWith('{"type":"push"')) tap.pushes.push(data);
        tap.onSend?.(data);
        this.socket.send(data);
      }
      close(code?: number, reason?: string): void {
        this.socket.close(code, reason);
      }
      terminate(): void {
        this.socket.terminate();
      }
      addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void {
        if (type !== 'message') {
          this.socket.addEventListener(type, listener);
          return;
        }
        this.socket.addEventListener('message', (event) => {
          const text = String(event.data);
          const drop = tap.dropIncoming?.(text) ?? false;
          tap.remember(`${drop ? 'x' : '<'} ${text}`);
          if (drop) return;
          listener(event);
        });
      }
    };
  }

  private remember(line: string): void {
    this.recent.push(line.length > 600 ? `${line.slice(0, 600)}…` : line);
    if (this.recent.length > 200) this.recent.shift();
  }
}

/**
 * One sync client of an e2e test: its SQLite database, the client, its own proxy to the server,
 * the tap on its sockets, and what it reported (errors other than connection drops, rejections).
 *
 * @example
 *   const [a, b] = await openClients(server, 2);
 *   a.proxy.setRefusing(true);
 */
export interface E2eClient<S extends Schema = typeof e2eSchema> {
  readonly name: string;
  readonly db: Database<S>;
  readonly sync: SyncClient;
  readonly proxy: TcpProxy;
  readonly tap: SocketTap;
  /** Errors the client emitted, except connection drops (which tests cause on purpose). */
  readonly errors: Error[];
  readonly rejected: RejectedEvent[];
  /** Stops the client, closes its database and its proxy. */
  close(): Promise<void>;
}

/**
 * Where clients connect and how they get a token: a test server, or a server a test runs itself.
 *
 * @example
 *   const target: SyncTarget = { port: server.port, token: () => signToken('u1') };
 */
export interface SyncTarget {
  readonly port: number;
  token(userId: string): Promise<string>;
}

/**
 * A JWT for `userId` signed with `TEST_JWT_SECRET` (test/support/sync-server.ts), for servers a
 * test starts itself with `auth: { jwtSecret: TEST_JWT_SECRET }`.
 *
 * @example
 *   const clients = await openClients({ port: server.port, token: signToken }, 2);
 */
export function signToken(userId: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

/**
 * How `openClients` makes its clients: the sync client's options, plus the SQLite driver they run
 * on (`clientDriver`, 'sync' by default) and the schema (`schema`, `e2eSchema` by default).
 *
 * @example
 *   await openClients(target, 2, { clientDriver: 'async', schema: kindsSchema });
 */
export interface OpenClientsOptions<S extends Schema = typeof e2eSchema> extends Partial<SyncClientOptions> {
  readonly clientDriver?: ClientDriverKind;
  readonly schema?: S;
}

/**
 * Opens `count` sync clients (named A, B, C, ...) on fresh in-memory SQLite databases (on the
 * driver `options.clientDriver` names), each behind a proxy of its own to `target.port`, with fast
 * reconnects. They are not started. Close them with `closeClients` (stops every client before
 * closing databases and proxies). `beforeSync` runs on each database before its sync client is made.
 *
 * @example
 *   const clients = await openClients({ port: t.server.port, token: t.token }, 3, { clientDriver: 'async' });
 *   await Promise.all(clients.map((c) => c.sync.start()));
 */
export async function openClients<S extends Schema = typeof e2eSchema>(
  target: SyncTarget,
  count: number,
  options: OpenClientsOptions<S> = {},
  beforeSync?: (db: Database<S>) => Promise<void>,
): Promise<E2eClient<S>[]> {
  const { clientDriver = 'sync', schema: clientSchema = e2eSchema as Schema as S, ...syncOptions } = options;
  const clients: E2eClient<S>[] = [];
  for (let i = 0; i < count; i++) {
    const name = String.fromCharCode(65 + i);
    const proxy = await startTcpProxy(target.port);
    const db = await openDatabase(clientSchema, clientDriver === 'async' ? asyncSqlite() : sqlite());
    // Writes an app makes before it ever sets up sync.
    if (beforeSync) await beforeSync(db);
    const tap = new SocketTap();
    const token = await target.token(`user-${name}`);
    const sync = syncClient(db, {
      url: `ws://127.0.0.1:${proxy.port}/sync`,
      token,
      WebSocket: tap.WebSocket,
      backoff: { initialMs: 10, maxMs: 100 },
      ...syncOptions,
    });
    const errors: Error[] = [];
    const rejected: RejectedEvent[] = [];
    sync.on('error', (error) => {
      if (!is(error, SyncConnectionError)) errors.push(error);
    });
    sync.on('rejected', (event) => rejected.push(event));
    let closed: Promise<void> | undefined;
    const close = () => {
      closed ??= (async () => {
        await sync.stop();
        await db.close();
        await proxy.close();
      })();
      return closed;
    };
    clients.push({ name, db, sync, proxy, tap, errors, rejected, close });
  }
  return clients;
}

/**
 * Closes clients (each stopped first), ignoring ones already closed.
 *
 * @example
 *   afterEach(() => closeClients(clients));
 */
export async function closeClients(clients: readonly E2eClient<any>[]): Promise<void> {
  await Promise.allSettled(clients.map((c) => c.close()));
}

/**
 * Waits until every client has every local write acknowledged (`flush()`) and then has every
 * server change committed so far (`caughtUp()`), each bounded by `timeoutMs` with the client named.
 * The clients must be started and able to connect.
 *
 * @example
 *   await settle([a, b]);
 */
export async function settle(clients: readonly E2eClient<any>[], timeoutMs = 20_000): Promise<void> {
  await Promise.all(
    clients.map((c) => within(c.sync.flush(), timeoutMs, `client ${c.name} to flush its outbox`)),
  );
  await Promise.all(
    clients.map((c) => within(c.sync.caughtUp(), timeoutMs, `client ${c.name} to catch up with the server`)),
  );
}

function primaryKeyOf(table: AnyTable, row: Record<string, unknown>): string {
  return JSON.stringify(
    table.$primaryKeyColumns.map((column) => row[column.key]),
    (_key, value) => (typeof value === 'bigint' ? value.toString() : value),
  );
}

/**
 * Every row of `tables` as app values, by table name, sorted by primary key: the same on a SQLite
 * client and on the PostgreSQL server when the replicas hold the same data.
 *
 * @example
 *   expect(await dumpTables(a.db)).toEqual(await dumpTables(t.server.db));
 */
export async function dumpTables(
  db: Database<Schema>,
  tables: readonly AnyTable[] = e2eTables,
): Promise<Record<string, Record<string, unknown>[]>> {
  const dump: Record<string, Record<string, unknown>[]> = {};
  for (const t of tables) {
    const rows = (await db.select().from(t)) as Record<string, unknown>[];
    dump[t.$name] = rows
      .map((row) => ({ key: primaryKeyOf(t, row), row }))
      .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))
      .map((x) => x.row);
  }
  return dump;
}

/**
 * Checks that every client holds exactly the server's rows (call after `settle`), and that none
 * reported an error other than connection drops.
 *
 * @example
 *   await settle(clients);
 *   await expectConverged(t.server.db, clients);
 */
export async function expectConverged(
  serverDb: Database<Schema>,
  clients: readonly E2eClient<any>[],
  tables: readonly AnyTable[] = e2eTables,
): Promise<Record<string, Record<string, unknown>[]>> {
  const expected = await dumpTables(serverDb, tables);
  for (const c of clients) {
    expect(await dumpTables(c.db, tables), `client ${c.name} differs from the server`).toEqual(expected);
    expect(
      c.errors.map((e) => e.message),
      `client ${c.name} reported errors`,
    ).toEqual([]);
  }
  return expected;
}

/**
 * Runs SQL on a client's SQLite database directly (no capture bypass: synced tables' triggers fire).
 *
 * @example
 *   await rawSqlite(a.db, 'CREATE TABLE seen (id TEXT PRIMARY KEY)');
 */
export async function rawSqlite(
  db: Database<Schema>,
  text: string,
  params: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  const { rows } = await db.driver.query({ sql: text, params, arrayMode: false, needsBigInt: false });
  return rows as Record<string, unknown>[];
}

/**
 * A backend writing straight to the server's tables, past the sync server: on the real server a
 * pg connection of its own; on PGlite, which is one session, the server's own driver, since a
 * second caller on that session could run its statements inside one of the server's transactions.
 *
 * @example
 *   const direct = await directWriter(t);
 *   await direct.query('UPDATE todos SET note = $1 WHERE id = $2', ['direct', id]);
 *   await direct.close();
 */
export interface DirectWriter {
  query(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Ends the connection (also done when the test ends). */
  close(): Promise<void>;
}

/**
 * Opens a `DirectWriter` on a test server's database.
 *
 * @example
 *   const direct = await directWriter(t);
 */
export async function directWriter(t: TestServer<Schema>): Promise<DirectWriter> {
  if (t.server.db.driver.name === 'pglite') {
    const driver = t.server.db.driver;
    return {
      async query(text, params = []) {
        const { rows } = await driver.query({ sql: text, params, arrayMode: false, needsBigInt: false });
        return rows as Record<string, unknown>[];
      },
      close: async () => {},
    };
  }
  const client = await t.connectExternal();
  let ended: Promise<void> | undefined;
  return {
    query: async (text, params = []) => (await client.query(text, params)).rows,
    close: () => {
      ended ??= client.end().catch(() => {});
      return ended;
    },
  };
}

/**
 * One change a client pushed, as its push frame carried it (values by SQL column name).
 *
 * @example
 *   const stamps = pushedChanges(a.tap).filter((c) => c.table === 'todos').map((c) => c.hlc);
 */
export interface PushedChange {
  readonly mutationId: number;
  readonly table: string;
  readonly op: 'insert' | 'update' | 'delete';
  readonly pk: Record<string, unknown>;
  readonly values?: Record<string, unknown>;
  readonly hlc: string;
}

/**
 * Every change in the push frames a tap saw, in the order sent (a batch sent twice appears twice).
 *
 * @example
 *   const [change] = pushedChanges(a.tap);
 */
export function pushedChanges(tap: SocketTap): PushedChange[] {
  const out: PushedChange[] = [];
  for (const frame of tap.pushes) {
    const push = JSON.parse(frame) as {
      batches: { mutationId: number; changes: Omit<PushedChange, 'mutationId'>[] }[];
    };
    for (const batch of push.batches) {
      for (const change of batch.changes) out.push({ mutationId: batch.mutationId, ...change });
    }
  }
  return out;
}

/**
 * Waits until the wall clock has moved past every stamp made so far (2 ms), so the next write is
 * stamped newer than every earlier one on every node: the tests order writes this way to know
 * which one the last-writer-wins rule picks.
 *
 * @example
 *   await a.db.update(items).set({ title: 'old' });
 *   await nextMillisecond();
 *   await b.db.update(items).set({ title: 'new' }); // newer stamp: wins everywhere
 */
export async function nextMillisecond(): Promise<void> {
  const start = Date.now();
  for (let i = 0; i < 1000 && Date.now() <= start + 1; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
