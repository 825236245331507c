import pg from 'pg';
import type { Driver, DriverQuery, DriverResult, DriverSession } from '../../database/driver.js';
import { statementName } from '../../database/statement-name.js';
import { postgresDialect } from '../../dialect/postgres/postgres-dialect.js';
import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { UsageError } from '../../errors.js';

export interface PostgresOptions {
  /** `postgres://user@host:5432/db`; ignored when `pool` is given. */
  connectionString?: string;
  /** A pool the app owns; syncline never ends it. */
  pool?: pg.Pool;
  /** Pool settings for the pool syncline creates (max connections, timeouts, ...). */
  poolConfig?: pg.PoolConfig;
  /** A PostgreSQL schema (namespace) to work in; created if missing and put first on the search path. */
  schema?: string;
}

function toDriverParams(params: readonly unknown[]): unknown[] {
  // node-postgres sends Buffers as bytea; a plain Uint8Array would be sent as JSON.
  return params.map((value) =>
    value instanceof Uint8Array && !Buffer.isBuffer(value)
      ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
      : value,
  );
}

type Queryable = pg.Pool | pg.PoolClient;

/** A checked-out connection: whether PostgreSQL ended it since, and its release. */
interface CheckedOut {
  readonly client: pg.PoolClient;
  lost(): boolean;
  release(broken?: boolean): void;
}

/** How many connections a checkout takes, at most, when each ended before it was used. */
const MAX_CHECKOUT_ATTEMPTS = 3;

/** How many distinct named statements a driver keeps prepared per connection, at most. */
const MAX_NAMED_STATEMENTS = 1000;

async function runOn(client: Queryable, query: DriverQuery, named: Set<string>): Promise<DriverResult> {
  let name = query.name ?? (query.keepPrepared ? statementName(query.sql) : undefined);
  // Every named statement stays prepared on each connection that ran it: past the bound, new
  // shapes run unnamed so server memory stays bounded whatever the app does.
  if (name !== undefined && !named.has(name)) {
    if (named.size < MAX_NAMED_STATEMENTS) named.add(name);
    else name = undefined;
  }
  const result = await client.query({
    text: query.sql,
    values: toDriverParams(query.params),
    rowMode: query.arrayMode ? 'array' : undefined,
    name,
  } as pg.QueryConfig);
  return { rows: result.rows, rowCount: result.rowCount ?? result.rows.length };
}

class NodePostgresDriver implements Driver {
  readonly dialect = postgresDialect;
  readonly name = 'node-postgres';
  private pool: pg.Pool | undefined;

  poolStats(): { total: number; idle: number; waiting: number } {
    const pool = this.pool;
    return { total: pool?.totalCount ?? 0, idle: pool?.idleCount ?? 0, waiting: pool?.waitingCount ?? 0 };
  }
  private readonly named = new Set<string>();
  /** Connections of an app-owned pool already put on the schema (the pool may have had some before). */
  private readonly onSchema = new WeakSet<pg.PoolClient>();

  constructor(private readonly options: PostgresOptions) {}

  async open(): Promise<void> {
    if (this.pool) return;
    const { schema } = this.options;
    if (this.options.pool) {
      this.pool = this.options.pool;
    } else {
      if (!this.options.connectionString && !this.options.poolConfig) {
        throw new UsageError('postgres(): give a connectionString, a poolConfig or a pool');
      }
      this.pool = new pg.Pool({
        connectionString: this.options.connectionString,
        ...this.options.poolConfig,
        // The search path is part of the connection, so every pooled connection works in the schema.
        options: schema ? `-c search_path=${quoteIdentifier(schema)}` : this.options.poolConfig?.options,
      });
      // An idle client of our pool that loses its connection must not crash the process; its next
      // use reports it. (An app-owned pool keeps whatever error handling the app gave it.)
      this.pool.on('error', () => {});
    }
    if (schema) {
      // Two processes creating the same schema at once can both miss it and collide on the catalog's
      // unique index (23505) or see it appear (42P06): either way the schema is there.
      await this.pool
        .query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`)
        .catch((error: { code?: string }) => {
          if (error?.code !== '23505' && error?.code !== '42P06') throw error;
        });
    }
  }

  private get handle(): pg.Pool {
    if (!this.pool)
      throw new UsageError('the PostgreSQL driver is not open: pass it to openDatabase() first');
    return this.pool;
  }

  /**
   * A pooled connection; on an app-owned pool it is first switched to the schema, if one is set.
   * While checked out it has an error listener of ours: pg-pool removes its own on checkout, and
   * a connection PostgreSQL ends meanwhile (pg_terminate_backend, a restart, a network cut) would
   * otherwise emit an unhandled 'error' and end the process. The query in flight still rejects;
   * `release` then drops the connection instead of pooling it. A connection that ended before it
   * ran anything is dropped and another taken, so the work waiting for it goes on.
   */
  private async checkout(): Promise<CheckedOut> {
    for (let attempt = 1; ; attempt++) {
      const checked = await this.connectWatched();
      if (checked.lost() && attempt < MAX_CHECKOUT_ATTEMPTS) {
        checked.release(true);
        continue;
      }
      const { client } = checked;
      const { schema } = this.options;
      if (schema && this.options.pool && !this.onSchema.has(client)) {
        try {
          await client.query(`SET search_path TO ${quoteIdentifier(schema)}`);
        } catch (error) {
          checked.release(true);
          throw error;
        }
        this.onSchema.add(client);
      }
      return checked;
    }
  }

  /**
   * `pool.connect` with our listener added in its callback, in the same tick pg-pool takes its own
   * off. Awaiting the pool's promise instead leaves a gap of a microtask: when the reply that frees
   * a connection (or completes its startup) and PostgreSQL's "terminating connection" arrive in
   * one read, pg-protocol parses both before any microtask runs, and the second finds no listener
   * (the soak's terminate fault, on a busy machine).
   */
  private connectWatched(): Promise<CheckedOut> {
    return new Promise((resolve, reject) => {
      this.handle.connect((error, client) => {
        if (error || !client) {
          reject(error);
          return;
        }
        let lost = false;
        const onError = () => {
          lost = true;
        };
        client.on('error', onError);
        resolve({
          client,
          lost: () => lost,
          release: (broken) => {
            client.off('error', onError);
            client.release(broken || lost ? true : undefined);
          },
        });
      });
    });
  }

  query(query: DriverQuery): Promise<DriverResult> {
    if (!(this.options.schema && this.options.pool)) return runOn(this.handle, query, this.named);
    return this.queryOnSchema(query);
  }

  private async queryOnSchema(query: DriverQuery): Promise<DriverResult> {
    const { client, release } = await this.checkout();
    try {
      return await runOn(client, query, this.named);
    } finally {
      release();
    }
  }

  async acquire(): Promise<DriverSession> {
    const { client, release } = await this.checkout();
    return {
      query: (query) => runOn(client, query, this.named),
      release,
    };
  }

  async listen(
    channel: string,
    onMessage: (payload: string) => void,
    onGap?: () => void,
  ): Promise<() => Promise<void>> {
    // LISTEN holds a connection for as long as it listens, so it gets its own, outside the pool.
    // When that connection drops it is opened again (with a growing pause), and `onGap` says that
    // notifications may have been missed meanwhile.
    const config = (this.handle as pg.Pool & { options: pg.PoolConfig }).options;
    let client: pg.Client | undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A reconnection reports its gap before anything the new connection heard: a notification
    // can arrive before the LISTEN's reply has been handed back, so the new connection holds what
    // it hears until the caller calls the function `connect` resolves with.
    const connect = async (): Promise<() => void> => {
      const next = new pg.Client(config);
      let held: string[] | undefined = [];
      next.on('notification', (message) => {
        if (message.channel !== channel || message.payload === undefined) return;
        if (held) held.push(message.payload);
        else onMessage(message.payload);
      });
      next.on('error', () => {});
      next.on('end', () => {
        if (!stopped && client === next) reconnect(1);
      });
      await next.connect();
      await next.query(`LISTEN ${quoteIdentifier(channel)}`);
      if (stopped) {
        await next.end().catch(() => {});
        return () => {};
      }
      client = next;
      return () => {
        const heard = held ?? [];
        held = undefined;
        for (const payload of heard) onMessage(payload);
      };
    };
    const reconnect = (attempt: number) => {
      client = undefined;
      const pause = Math.min(5000, 50 * 2 ** attempt) * (0.5 + Math.random() / 2);
      timer = setTimeout(() => {
        timer = undefined;
        if (stopped) return;
        connect().then(
          (deliver) => {
            try {
              onGap?.();
            } finally {
              deliver();
            }
          },
          () => reconnect(attempt + 1),
        );
      }, pause);
    };
    (await connect())();
    return async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await client?.end().catch(() => {});
      client = undefined;
    };
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    if (pool && !this.options.pool) await pool.end();
  }
}

/**
 * PostgreSQL through a node-postgres Pool, from a connection string or a pool the app owns.
 * A transaction holds one pooled connection; other queries use the rest of the pool.
 *
 * @example
 *   const db = await openDatabase(appSchema, postgres({ connectionString: process.env.DATABASE_URL }));
 */
export function postgres(options: PostgresOptions | string): Driver {
  return new NodePostgresDriver(typeof options === 'string' ? { connectionString: options } : options);
}

export { pgFunctions, pgTypes } from './pg-extras.js';
