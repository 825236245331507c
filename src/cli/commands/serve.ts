import { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { Schema } from '../../schema/schema.js';
import type { AnyMutators } from '../../sync/mutators/define-mutators.js';
import { MIN_SECRET_BYTES, type SyncAuth } from '../../sync/server/auth.js';
import type { SyncRules } from '../../sync/server/rules.js';
import { LOG_LEVELS, type LogLevel } from '../../sync/server/server-log.js';
import { createSyncServer, type SyncServer } from '../../sync/server/sync-server.js';
import { databaseDriver, databaseOpenError } from '../database-option.js';
import { loadSchemaModule } from '../load-schema.js';
import { onStopSignal } from '../stop-signals.js';

/**
 * What `syncline serve` takes, one field per flag (`--jwt-secret` is `jwtSecret`): the schema
 * module, the database (a postgres:// URL or a PGlite folder), where to listen, how to check tokens
 * (a secret, else SYNCLINE_JWT_SECRET, or a JWKS URL) and the log level.
 *
 * @example
 *   const options: ServeOptions = { schema: 'src/schema.ts', database: 'postgres://localhost/app', port: 4000 };
 */
export interface ServeOptions {
  /** The module that exports the schema, and optionally `rules`. */
  schema: string;
  /** The export to take when the module exports several schemas. */
  export?: string;
  /** `postgres://…` / `postgresql://…`, or a PGlite data directory (created if missing). */
  database: string;
  port?: string | number;
  host?: string;
  path?: string;
  jwtSecret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  logLevel?: LogLevel;
  /** Serve /metrics (Prometheus text). */
  metrics?: boolean;
  /** Serve /status, the status page (needs an admin token). */
  statusPage?: boolean;
  /** The token /metrics and /status need (else SYNCLINE_ADMIN_TOKEN). */
  adminToken?: string;
  /** How changes are captured: 'triggers' (default) or 'logical' (`--capture logical`). */
  capture?: string;
  cwd?: string;
}

/**
 * Imports the app's module once and takes its schema, and its `rules` and `mutators` exports
 * (when there are). Once, because the rules' conditions are built on the module's own table
 * objects.
 */
async function loadServerModule(
  file: string,
  exportName: string | undefined,
  cwd: string,
): Promise<{ schema: Schema; rules: SyncRules<Schema> | undefined; mutators: AnyMutators | undefined }> {
  const { schema, module } = await loadSchemaModule(file, exportName, cwd);
  const rules = module.rules;
  if (rules !== undefined && (rules === null || typeof rules !== 'object')) {
    throw new UsageError(`the "rules" export of ${file} must be an object of table rules`);
  }
  const mutators = module.mutators;
  if (mutators !== undefined && (mutators === null || typeof mutators !== 'object')) {
    throw new UsageError(`the "mutators" export of ${file} must be the object defineMutators() returns`);
  }
  return {
    schema,
    rules: rules as SyncRules<Schema> | undefined,
    mutators: mutators as AnyMutators | undefined,
  };
}

function authFrom(options: ServeOptions): SyncAuth {
  const secret = options.jwtSecret ?? process.env.SYNCLINE_JWT_SECRET;
  const claims = {
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };
  if (secret && options.jwksUrl) {
    throw new UsageError('give either --jwt-secret (or SYNCLINE_JWT_SECRET) or --jwks-url, not both');
  }
  if (secret) {
    const bytes = new TextEncoder().encode(secret).length;
    // The library refuses it too; checked here so the message names the flag or variable.
    if (bytes < MIN_SECRET_BYTES) {
      const from = options.jwtSecret !== undefined ? '--jwt-secret' : 'SYNCLINE_JWT_SECRET';
      throw new UsageError(
        `${from} is ${bytes} bytes long; an HS256 secret needs at least ${MIN_SECRET_BYTES} bytes of randomness (make one with: openssl rand -base64 32)`,
      );
    }
    return { jwtSecret: secret, ...claims };
  }
  if (options.jwksUrl) return { jwksUrl: options.jwksUrl, ...claims };
  throw new UsageError(
    'the sync server needs a way to check tokens: pass --jwt-secret <secret> (or set SYNCLINE_JWT_SECRET) for HS256 tokens, or --jwks-url <url> for tokens signed by an identity provider',
  );
}

/** `--log-level` (else SYNCLINE_LOG_LEVEL), checked here so the error names the option. */
function logLevelFrom(value: string | undefined): LogLevel | undefined {
  const from = value !== undefined ? '--log-level' : 'SYNCLINE_LOG_LEVEL';
  const level = value ?? process.env.SYNCLINE_LOG_LEVEL;
  if (level === undefined || level === '') return undefined;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`${from} "${level}" is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
  }
  return level as LogLevel;
}

/** `--capture`: checked here so the error names the option. */
function captureFrom(value: string | undefined): 'triggers' | 'logical' | undefined {
  if (value === undefined || value === 'triggers' || value === 'logical') return value;
  throw new UsageError(`--capture must be triggers or logical, got "${value}"`);
}

function portFrom(value: string | number | undefined): number {
  const port = Number(value ?? 4000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be a whole number from 0 to 65535, got "${value}"`);
  }
  return port;
}

/**
 * Starts a sync server as `syncline serve` does and returns it, listening. The schema module's
 * `rules` export, when present, is used as the server's rules.
 *
 * @example
 *   const server = await serve({ schema: 'src/schema.ts', database: './data', port: 0, jwtSecret: process.env.JWT_SECRET });
 *   console.log(server.url);
 */
export async function serve(options: ServeOptions): Promise<SyncServer> {
  const cwd = options.cwd ?? process.cwd();
  const auth = authFrom(options);
  const port = portFrom(options.port);
  const level = logLevelFrom(options.logLevel);
  const { schema, rules, mutators } = await loadServerModule(options.schema, options.export, cwd);
  const adminToken = options.adminToken ?? (process.env.SYNCLINE_ADMIN_TOKEN || undefined);
  if (options.statusPage && !adminToken) {
    throw new UsageError(
      '--status-page needs --admin-token <token> (or SYNCLINE_ADMIN_TOKEN): the page shows who is connected',
    );
  }
  let server: SyncServer;
  try {
    server = await createSyncServer({
      schema,
      database: await databaseDriver(options.database, cwd),
      auth,
      rules,
      mutators,
      path: options.path,
      log: level ? { level } : undefined,
      monitoring: { metrics: options.metrics, statusPage: options.statusPage, adminToken },
      capture: captureFrom(options.capture),
    });
  } catch (error) {
    throw databaseOpenError(error, options.database);
  }
  try {
    await server.listen({ port, host: options.host });
  } catch (error) {
    await server.close();
    throw error;
  }
  return server;
}

/** `syncline serve --schema <file> --database <url|dir> [--port 4000] [--host 127.0.0.1] [...]` */
export function serveCommand(): Command {
  return new Command('serve')
    .description('run the sync server: clients connect over WebSockets to ws://host:port/sync')
    .requiredOption('-s, --schema <file>', 'the module that exports the schema (and optionally rules)')
    .requiredOption(
      '-d, --database <url|dir>',
      'a postgres:// URL, or a folder for an embedded PGlite database (created if missing)',
    )
    .option('-p, --port <port>', 'the port to listen on (0 for a free one)', '4000')
    .option('--host <host>', 'the address to listen on', '127.0.0.1')
    .option('--path <path>', 'the URL path of the WebSocket endpoint', '/sync')
    .option('-e, --export <name>', 'the export to use when the module exports several schemas')
    .option('--jwt-secret <secret>', 'the HS256 secret tokens are signed with (or SYNCLINE_JWT_SECRET)')
    .option('--jwks-url <url>', 'a JSON Web Key Set URL to check tokens against')
    .option('--issuer <iss>', 'the issuer tokens must name')
    .option('--audience <aud>', 'the audience tokens must name')
    .option('--log-level <level>', 'silent, error, warn, info or debug (or SYNCLINE_LOG_LEVEL)')
    .option('--metrics', 'serve /metrics in Prometheus text (behind the admin token when one is set)')
    .option('--status-page', 'serve /status, a page of the connections and activity (needs the admin token)')
    .option('--admin-token <token>', 'the token /metrics and /status need (or SYNCLINE_ADMIN_TOKEN)')
    .option(
      '--capture <mode>',
      'how changes are captured: triggers (default) or logical (PostgreSQL with wal_level = logical)',
    )
    .action(async (options: ServeOptions) => {
      const server = await serve(options);
      console.log(`syncline: sync server listening on ${server.url}`);
      await new Promise<void>((resolveStop) => {
        onStopSignal((why) => {
          console.log(`syncline: ${why}, shutting down`);
          void server.close().finally(resolveStop);
        });
      });
    });
}
