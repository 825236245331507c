import type pg from 'pg';
import { DatabaseError } from '../../errors.js';
import { parseLsn } from './logical-apply.js';

/** The prefix of a barrier's logical message; the consumer only needs its transaction's commit. */
export const BARRIER_PREFIX = 'syncline-barrier';

/**
 * The barrier of logical capture (docs/design.md section 4, "Capture modes"): to learn that every
 * transaction committed before now is in the change log, a waiter commits a tiny transaction of
 * its own, a transactional logical message, and waits until the consumer has passed that commit.
 * Its commit flushes the WAL, so the walsender sends it at once (a position read with
 * `pg_current_wal_flush_lsn()` may sit past the last record sent until the WAL writer or a
 * keepalive moves it, 200 ms or more). Waiters that arrive while a barrier is being committed share
 * the next one: at most one barrier is in flight, on a connection of its own (a push waiting
 * inside its transaction holds a pool connection; the barrier must not need another one).
 *
 * @example
 *   const barrier = new CaptureBarrier(config, 10_000);
 *   const lsn = await barrier.pass(); // the barrier's message position: wait for the consumer past it
 */
export class CaptureBarrier {
  private client: Promise<pg.Client> | undefined;
  private running = false;
  private waiting: { resolve: (lsn: bigint) => void; reject: (error: Error) => void }[] = [];
  private closed = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly timeoutMs: number,
  ) {}

  /** Commits a barrier begun after this call (or joins one not begun yet); its message position. */
  pass(): Promise<bigint> {
    if (this.closed)
      return Promise.reject(new DatabaseError('logical capture: the sync server is closing', '57P01'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.waiting.length > 0) {
      const group = this.waiting;
      this.waiting = [];
      try {
        const lsn = await this.commit();
        for (const waiter of group) waiter.resolve(lsn);
      } catch (error) {
        for (const waiter of group) waiter.reject(error as Error);
      }
    }
    this.running = false;
  }

  private async commit(): Promise<bigint> {
    const client = await this.connect();
    try {
      const result = await client.query<{ lsn: string }>(
        `SELECT pg_logical_emit_message(true, '${BARRIER_PREFIX}', '')::text AS lsn`,
      );
      return parseLsn(result.rows[0]!.lsn);
    } catch (error) {
      // A connection that failed or timed out is not used again.
      this.client = undefined;
      void client.end().catch(() => {});
      throw new DatabaseError(
        `logical capture: the capture barrier failed: ${(error as Error).message}`,
        '57P03',
        {
          cause: error,
        },
      );
    }
  }

  private connect(): Promise<pg.Client> {
    this.client ??= (async () => {
      const { default: Pg } = await import('pg');
      // query_timeout bounds the barrier's commit on a server that does not answer.
      const client = new Pg.Client({ ...this.config, query_timeout: this.timeoutMs });
      client.on('error', () => {
        this.client = undefined;
      });
      await client.connect();
      return client;
    })().catch((error: Error) => {
      this.client = undefined;
      throw error;
    });
    return this.client;
  }

  /** Fails whoever waits for a barrier and closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) {
      waiter.reject(new DatabaseError('logical capture: the sync server is closing', '57P01'));
    }
    const client = this.client;
    this.client = undefined;
    await client?.then((c) => c.end()).catch(() => {});
  }
}
