import { PGlite } from '@electric-sql/pglite';
import type { Driver, DriverQuery, DriverResult, DriverSession } from '../../database/driver.js';
import { SingleConnection } from '../../database/single-connection.js';
import { postgresDialect } from '../../dialect/postgres/postgres-dialect.js';
import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { UsageError } from '../../errors.js';

export interface PgliteOptions {
  /** A folder to keep the database in; in memory when left out. */
  dataDir?: string;
  /** A PGlite instance the app owns; syncline never closes it. */
  instance?: PGlite;
  /** A PostgreSQL schema (namespace) to work in; created if missing and put first on the search path. */
  schema?: string;
}

class PgliteDriver implements Driver {
  readonly dialect = postgresDialect;
  readonly name = 'pglite';
  private pg: PGlite | undefined;
  // PGlite is one session: a transaction must have it to itself until it ends.
  private readonly connection = new SingleConnection((q) => this.run(q));

  constructor(private readonly options: PgliteOptions) {}

  async open(): Promise<void> {
    if (this.pg) return;
    const pg = this.options.instance ?? new PGlite(this.options.dataDir);
    await pg.waitReady;
    const { schema } = this.options;
    if (schema) {
      const quoted = quoteIdentifier(schema);
      await pg.exec(`CREATE SCHEMA IF NOT EXISTS ${quoted}; SET search_path TO ${quoted}`);
    }
    this.pg = pg;
  }

  /** The PGlite instance, for what syncline does not cover. */
  get handle(): PGlite {
    if (!this.pg) throw new UsageError('the PGlite driver is not open: pass it to openDatabase() first');
    return this.pg;
  }

  private async run(query: DriverQuery): Promise<DriverResult> {
    const result = await this.handle.query(query.sql, query.params as unknown[], {
      rowMode: query.arrayMode ? 'array' : 'object',
    });
    return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
  }

  query(query: DriverQuery): Promise<DriverResult> | DriverResult {
    return this.connection.query(query);
  }

  acquire(): Promise<DriverSession> {
    return this.connection.acquire();
  }

  async listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>> {
    const unlisten = await this.handle.listen(channel, onMessage);
    return async () => {
      if (this.pg) await unlisten();
    };
  }

  async close(): Promise<void> {
    const pg = this.pg;
    this.pg = undefined;
    if (pg && !this.options.instance) await pg.close();
  }
}

/**
 * Embedded PostgreSQL (PGlite, WASM): no server to run. In memory, or kept in a data directory.
 *
 * @example
 *   const db = await openDatabase(appSchema, pglite({ dataDir: './data' }));
 */
export function pglite(options: PgliteOptions = {}): Driver & { readonly handle: PGlite } {
  return new PgliteDriver(options);
}
