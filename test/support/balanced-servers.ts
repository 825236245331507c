import { writeFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import pg from 'pg';
import { integer, schema, table, text, uuid } from '../../src/index.js';
import { cliApp, synclineModule } from './cli-app.js';
import { type BalancedServer, type Balancer, freePort, startHaproxy } from './haproxy.js';
import { type ServeProcess, startServeProcess } from './serve-process.js';

/**
 * A deployment of several `syncline serve` processes on one PostgreSQL behind HAProxy, as
 * docs/operations.md describes it: a schema (namespace) of its own on the server of
 * `DATABASE_URL`, an app folder with the schema module, fixed loopback ports for the servers (a
 * restarted server listens where the balancer expects it), and the balancer in front. Used by
 * test/sync/several-servers.test.ts and bench/sync/several-servers.ts.
 *
 * @example
 *   const deployment = await BalancedServers.start(3);
 *   const sync = syncClient(db, { url: deployment.url, token: () => deployment.token('u1') });
 *   await deployment.server(0).stop('SIGKILL');
 *   await deployment.close();
 */

/** The secret every server of a deployment checks tokens with. */
const JWT_SECRET = 'several-servers-secret-of-at-least-32-bytes';

/**
 * The one synced table of the deployment's app, for clients and backends to write (the schema
 * module the servers load declares the same).
 *
 * @example
 *   await db.insert(notes).values({ id: randomUUID(), owner: 'u1', n: 0, body: 'hello' });
 */
export const notes = table('notes', {
  id: uuid().primaryKey(),
  owner: text().notNull(),
  n: integer().notNull(),
  body: text().notNull(),
});

/** The deployment's schema, as its clients open their databases with it. */
export const notesSchema = schema({ notes }, { version: 1 });

/** The app's schema module: the table above, readable and writable by every user. */
const SCHEMA_MODULE = `import { integer, schema, table, text, uuid } from '${synclineModule}';
export const notes = table('notes', {
  id: uuid().primaryKey(),
  owner: text().notNull(),
  n: integer().notNull(),
  body: text().notNull(),
});
export const appSchema = schema({ notes }, { version: 1 });
export const rules = { notes: { read: () => true, write: () => true } };
`;

export class BalancedServers {
  private readonly processes: (ServeProcess | undefined)[];
  /** Error lines from the log of every server process so far (killed ones included). */
  readonly errorLines: string[] = [];

  private constructor(
    private readonly app: ReturnType<typeof cliApp>,
    private readonly admin: pg.Client,
    /** The PostgreSQL schema the deployment's tables are in. */
    readonly namespace: string,
    /** The URL every server is given (`?options=-c search_path=...`). */
    readonly databaseUrl: string,
    /** The port each server listens on, by index. */
    readonly ports: readonly number[],
    readonly balancer: Balancer,
  ) {
    this.processes = ports.map(() => undefined);
  }

  /**
   * Makes a fresh namespace, starts HAProxy and `count` servers (all at the same moment, so their
   * migrations and capture installs race), and resolves once the balancer sees every one up.
   */
  static async start(count: number, prefix = 'balanced'): Promise<BalancedServers> {
    const base = process.env.DATABASE_URL;
    if (!base) throw new Error('BalancedServers needs DATABASE_URL');
    const namespace = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${namespace}"`);
    const url = new URL(base);
    url.searchParams.set('options', `-c search_path=${namespace}`);
    const app = cliApp('syncline-balanced-');
    writeFileSync(`${app.dir}/schema.ts`, SCHEMA_MODULE);
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(await freePort());
    let balancer: Balancer | undefined;
    let deployment: BalancedServers | undefined;
    try {
      balancer = await startHaproxy(ports.map((port, i) => ({ name: `s${i + 1}`, port })));
      deployment = new BalancedServers(app, admin, namespace, url.href, ports, balancer);
      await Promise.all(ports.map((_, i) => deployment!.startServer(i)));
      await deployment.waitForBalancer(
        (servers) => servers.every((s) => s.status === 'UP'),
        'every server up',
      );
      return deployment;
    } catch (error) {
      if (deployment) await deployment.close();
      else {
        await balancer?.close();
        await admin.query(`DROP SCHEMA "${namespace}" CASCADE`);
        await admin.end();
        app.remove();
      }
      throw error;
    }
  }

  /** The balancer's WebSocket URL, where clients connect. */
  get url(): string {
    return `ws://127.0.0.1:${this.balancer.port}/sync`;
  }

  /** Server `i`'s own URL, past the balancer. */
  directUrl(i: number): string {
    return `ws://127.0.0.1:${this.ports[i]}/sync`;
  }

  /** The running process of server `i` (throws when it is not running). */
  server(i: number): ServeProcess {
    const served = this.processes[i];
    if (!served) throw new Error(`server ${i + 1} is not running`);
    return served;
  }

  /** Whether server `i` has a running process. */
  isRunning(i: number): boolean {
    return this.processes[i] !== undefined;
  }

  /** Starts server `i` on its port (again, after a stop). */
  async startServer(i: number): Promise<void> {
    if (this.processes[i]) throw new Error(`server ${i + 1} is running already`);
    const served = await startServeProcess(this.app.dir, [
      '--schema',
      'schema.ts',
      '--database',
      this.databaseUrl,
      '--port',
      String(this.ports[i]),
      '--jwt-secret',
      JWT_SECRET,
      '--log-level',
      'warn',
    ]);
    this.processes[i] = served;
    void served.exited.then(() => {
      if (this.processes[i] === served) this.processes[i] = undefined;
      for (const line of served.stderr().split('\n')) {
        if (line.includes('"level":"error"')) this.errorLines.push(`server ${i + 1}: ${line}`);
      }
    });
  }

  /** Stops server `i` with `signal` and waits until its process is gone. */
  async stopServer(i: number, signal: NodeJS.Signals): Promise<void> {
    const served = this.server(i);
    this.processes[i] = undefined;
    await served.stop(signal);
    for (const line of served.stderr().split('\n')) {
      if (line.includes('"level":"error"')) this.errorLines.push(`server ${i + 1}: ${line}`);
    }
  }

  /** Error lines of the running servers' logs so far, with those of the stopped ones. */
  currentErrors(): string[] {
    const running = this.processes.flatMap((served, i) =>
      served
        ? served
            .stderr()
            .split('\n')
            .filter((line) => line.includes('"level":"error"'))
            .map((line) => `server ${i + 1}: ${line}`)
        : [],
    );
    return [...this.errorLines, ...running];
  }

  /** Waits (bounded) until the balancer's view of the servers satisfies `check`. */
  async waitForBalancer(
    check: (servers: BalancedServer[]) => boolean,
    what: string,
    timeoutMs = 20_000,
  ): Promise<BalancedServer[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const servers = await this.balancer.servers();
      if (check(servers)) return servers;
      if (Date.now() > deadline) {
        throw new Error(
          `the balancer did not see ${what} within ${timeoutMs} ms: ${JSON.stringify(servers)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** A JWT for `userId` that every server of the deployment accepts, valid for an hour. */
  token(userId: string): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(JWT_SECRET));
  }

  /** A pg connection of its own on the deployment's schema (a backend, or the test looking). */
  async connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    await client.connect();
    return client;
  }

  /** Kills every server, stops the balancer, drops the namespace, removes the app folder. */
  async close(): Promise<void> {
    await Promise.allSettled(this.processes.map((served) => served?.stop('SIGKILL')));
    await this.balancer.close();
    await this.admin.query(`DROP SCHEMA IF EXISTS "${this.namespace}" CASCADE`).catch(() => {});
    await this.admin.end().catch(() => {});
    this.app.remove();
  }
}
