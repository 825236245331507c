import { UsageError } from '../../errors.js';

/**
 * How much the sync server logs, from nothing (`silent`) to everything (`debug`). Each level
 * includes the ones before it: `warn` logs warnings and errors.
 *
 * @example
 *   createSyncServer({ ..., log: { level: 'info' } });
 */
export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

/**
 * One structured log entry: when, how severe, what happened (`event`, a short stable name such as
 * `connection.open` or `push.rejected`, for filtering), a sentence for people, and the details
 * (client id, user id, counts) as further fields.
 *
 * @example
 *   { time: '2025-01-01T12:00:00.000Z', level: 'info', event: 'connection.open', message: 'client connected', clientId: '…' }
 */
export interface LogEntry {
  readonly time: string;
  readonly level: Exclude<LogLevel, 'silent'>;
  readonly event: string;
  readonly message: string;
  readonly [field: string]: unknown;
}

/**
 * The `log` option of `createSyncServer`: the level (else the `SYNCLINE_LOG_LEVEL` environment
 * variable, else `warn`) and where entries go (else one JSON object per line on stderr).
 *
 * @example
 *   const entries: LogEntry[] = [];
 *   createSyncServer({ ..., log: { level: 'debug', sink: (e) => entries.push(e) } });
 */
export interface ServerLogOptions {
  readonly level?: LogLevel;
  readonly sink?: (entry: LogEntry) => void;
}

const RANK: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };
/**
 * Every log level, quietest first.
 *
 * @example
 *   if (!LOG_LEVELS.includes(value)) throw new Error(`use one of ${LOG_LEVELS.join(', ')}`);
 */
export const LOG_LEVELS: readonly LogLevel[] = Object.keys(RANK) as LogLevel[];
const LEVELS = LOG_LEVELS;

function checkLevel(level: string, from: string): LogLevel {
  if (Object.hasOwn(RANK, level)) return level as LogLevel;
  throw new UsageError(`${from}: unknown log level "${level}"; use one of ${LEVELS.join(', ')}`);
}

function writeLine(entry: LogEntry): void {
  process.stderr.write(`${JSON.stringify(entry, jsonSafe)}\n`);
}

/** Details can hold bigints (ticks) and errors: both would break or vanish in plain JSON. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

/**
 * The sync server's logger: structured entries, quiet by default (warnings and errors only), so a
 * server in production says nothing until something needs a person. A sink that throws is
 * ignored: logging must never take the server down.
 *
 * @example
 *   const log = new ServerLog({ level: 'info' });
 *   log.info('connection.open', 'client connected', { clientId });
 */
export class ServerLog {
  readonly level: LogLevel;
  private readonly sink: (entry: LogEntry) => void;

  constructor(options: ServerLogOptions = {}) {
    const fromEnv = process.env.SYNCLINE_LOG_LEVEL;
    this.level =
      options.level !== undefined
        ? checkLevel(options.level, 'log.level')
        : fromEnv
          ? checkLevel(fromEnv.trim().toLowerCase(), 'SYNCLINE_LOG_LEVEL')
          : 'warn';
    this.sink = options.sink ?? writeLine;
  }

  /** True when entries of `level` are written: skip building costly details otherwise. */
  enabled(level: Exclude<LogLevel, 'silent'>): boolean {
    return RANK[level] <= RANK[this.level];
  }

  /** Logs at `error`: something failed that a person should look at. */
  error(event: string, message: string, fields?: Record<string, unknown>): void {
    this.write('error', event, message, fields);
  }

  /** Logs at `warn`: something is off but the server goes on. */
  warn(event: string, message: string, fields?: Record<string, unknown>): void {
    this.write('warn', event, message, fields);
  }

  /** Logs at `info`: a connection, a disconnect, a snapshot, a rejected push. */
  info(event: string, message: string, fields?: Record<string, unknown>): void {
    this.write('info', event, message, fields);
  }

  /** Logs at `debug`: everything else: each push applied, each socket opened. */
  debug(event: string, message: string, fields?: Record<string, unknown>): void {
    this.write('debug', event, message, fields);
  }

  private write(
    level: Exclude<LogLevel, 'silent'>,
    event: string,
    message: string,
    fields?: Record<string, unknown>,
  ): void {
    if (!this.enabled(level)) return;
    try {
      const core = { time: new Date().toISOString(), level, event, message };
      // Core fields first in the line, and never overwritten by a detail of the same name.
      this.sink({ ...core, ...fields, ...core });
    } catch {
      // A broken sink loses the entry, not the server.
    }
  }
}
