import { entityKind, is } from '../../entity.js';
import { SynclineError } from '../../errors.js';
import { type ChangeLogReader, DEFAULT_PAGE_BYTES, type TickedBatch } from './change-log-reader.js';
import type { ServerLog } from './server-log.js';

/**
 * What the hub hands batches to: a connection. `deliver` must not wait (it queues the batch and
 * returns), so every subscriber sees each batch in the same tick, in order. `drained` resolves
 * when the subscriber can take more, so catching up from the log stays within memory.
 *
 * @example
 *   hub.attach({ deliver: (batch) => queue.push(batch), drained: () => socketDrained() }, cursor);
 */
export interface HubSubscriber {
  deliver(batch: TickedBatch): void;
  drained(): Promise<void>;
  /**
   * Changes it needed were pruned before the hub read them (another server ticked them, and a
   * prune deleted them): the hub has let go of it, and it should reconnect for a snapshot.
   */
  lost?(error: LogPrunedError): void;
}

/**
 * How the hub keeps recent batches and pages the log. The window of recent changes kept in memory
 * for connections that are slightly behind holds at most `windowChanges` changes (default 10,000)
 * and `windowBytes` bytes (default 32 MiB), the oldest batches leaving first (the newest batch
 * always stays). One page of the log (each batch the hub publishes, and each page a connection
 * further behind catches up with) holds at most `pageSize` changes (default 1,000) and `pageBytes`
 * bytes (default 1 MiB; a single bigger change is a page of its own). Bytes are those of the
 * logged JSON (`CapturedChange.bytes`).
 *
 * @example
 *   new ChangeHub(reader, log, { windowChanges: 50_000, windowBytes: 128 << 20 });
 */
export interface ChangeHubOptions {
  readonly windowChanges?: number;
  readonly windowBytes?: number;
  readonly pageSize?: number;
  readonly pageBytes?: number;
}

/** The bytes of a batch's changes, as the reader measured them. */
function batchBytes(batch: TickedBatch): number {
  let bytes = 0;
  for (const change of batch.changes) bytes += change.bytes ?? 0;
  return bytes;
}

/**
 * The changes a subscriber still needs were pruned from the change log while it caught up (a prune
 * raced its handshake): not a failure of the server. Its connection is closed so that it
 * reconnects, and the handshake then sends it a fresh snapshot.
 *
 * @example
 *   catch (e) { if (e instanceof LogPrunedError) socket.close(1013, 'reconnect for a snapshot'); }
 */
export class LogPrunedError extends SynclineError {
  static override readonly [entityKind]: string = 'LogPrunedError';
}

/**
 * The one reader of the change log for a whole server (docs/design.md section 4; docs/sync-internals.md "Server flow" step 2).
 * On each notification `read()` ticks what committed (`readNew()`), fills in ticks another server
 * instance assigned meanwhile, and gives the batch to every live subscriber. Reads are coalesced:
 * never two at once, and a `read()` called during one starts another right after it, so whoever
 * asks after a commit gets a read that sees it. A window of recent batches lets a connection
 * that is slightly behind join without a query.
 *
 * @example
 *   const hub = new ChangeHub(new ChangeLogReader(db), log);
 *   await hub.start();
 *   await driver.listen(CHANGES_CHANNEL, () => void hub.read().catch(() => {}));
 */
export class ChangeHub {
  /** The last tick handed to subscribers: every change up to here has been delivered. */
  position = 0n;
  private readonly subscribers = new Set<HubSubscriber>();
  private readonly window: TickedBatch[] = [];
  private windowSize = 0;
  /** The bytes of the batches in the window, in the same order. */
  private readonly windowSizes: number[] = [];
  private windowTotal = 0;
  private current: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** When the oldest read asked for and not done yet was asked (a commit notified, unread). */
  private unreadSince: number | undefined;

  /** How long the oldest commit notification not read yet has waited, in ms (0: caught up). */
  get lagMs(): number {
    return this.unreadSince === undefined ? 0 : Date.now() - this.unreadSince;
  }
  private readonly windowChanges: number;
  private readonly windowBytes: number;
  private readonly pageSize: number;
  private readonly pageBytes: number;

  constructor(
    private readonly reader: ChangeLogReader,
    private readonly log: ServerLog,
    options: ChangeHubOptions = {},
  ) {
    this.windowChanges = options.windowChanges ?? 10_000;
    this.windowBytes = options.windowBytes ?? 32 << 20;
    this.pageSize = options.pageSize ?? 1000;
    this.pageBytes = options.pageBytes ?? DEFAULT_PAGE_BYTES;
  }

  /** Ticks whatever is pending and starts from there: older changes are for catch-up, not live. */
  async start(): Promise<void> {
    // Only the position: the changes themselves are not delivered, so none is read.
    const batch = await this.reader.readNew(0);
    this.position = batch.to;
  }

  /** What the window of recent batches holds now: its changes and their bytes. */
  get windowed(): { changes: number; bytes: number } {
    return { changes: this.windowSize, bytes: this.windowTotal };
  }

  /** How many connections receive batches now. */
  get size(): number {
    return this.subscribers.size;
  }

  /**
   * Reads the log and delivers what is new; resolves once a read that started after this call has
   * delivered, so changes committed before the call have reached every live subscriber's queue.
   * Rejects when that read failed (a retry is scheduled).
   */
  read(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.unreadSince ??= Date.now();
    if (this.next) return this.next;
    if (!this.current) return this.startRead();
    this.next = this.current
      .catch(() => {})
      .then(() => {
        this.next = undefined;
        return this.startRead();
      });
    return this.next;
  }

  private startRead(): Promise<void> {
    const run: Promise<void> = this.runRead().finally(() => {
      if (this.current === run) this.current = undefined;
    });
    this.current = run;
    return run;
  }

  private async runRead(): Promise<void> {
    const started = Date.now();
    try {
      if (this.closed) return;
      // Only the first page comes with the ticking: a big transaction's changes are then read
      // page by page while the first pages are already on their way to clients.
      const batch = await this.reader.readNew(this.pageSize, this.pageBytes);
      if (this.closed) return;
      if (batch.to <= this.position) {
        this.readUpTo(started);
        return;
      }
      // When another instance ticked changes since our last read, those come first: everything
      // from our position on is then read from the log, in order.
      if (batch.from === this.position && batch.changes.length > 0) {
        this.publish({
          from: batch.from,
          to: batch.changes[batch.changes.length - 1]!.tick,
          changes: batch.changes,
        });
      }
      while (this.position < batch.to) {
        let page: TickedBatch;
        try {
          page = await this.readPage(this.position, batch.to);
        } catch (error) {
          if (!is(error, LogPrunedError)) throw error;
          await this.skipPruned(error);
          continue;
        }
        if (this.closed) return;
        this.publish(page);
      }
      this.readUpTo(started);
    } catch (error) {
      if (this.closed) return;
      this.log.error('hub.read_failed', `reading the change log failed: ${(error as Error).message}`, {
        error,
      });
      this.retry ??= setTimeout(() => {
        this.retry = undefined;
        this.read().catch(() => {});
      }, 1000);
      this.retry.unref?.();
      throw error;
    }
  }

  /**
   * What this hub had not read yet is gone: another server ticked it and a prune deleted it before
   * this hub's read. Without this, every later read would fail on the same gap and the server
   * would be wedged. The live subscribers cannot have those changes, so they are let go (their
   * connections reconnect for a snapshot), the window is emptied (it would have a gap), and the
   * hub goes on from the oldest change kept.
   */
  private async skipPruned(error: LogPrunedError): Promise<void> {
    const { oldest } = await this.reader.keptRange();
    if (oldest <= this.position) throw error;
    const lost = [...this.subscribers];
    this.log.warn(
      'hub.pruned',
      `${error.message}; the server goes on from position ${oldest}, and its ${lost.length} live connections reconnect for a snapshot`,
      { from: String(this.position), to: String(oldest), connections: lost.length },
    );
    this.subscribers.clear();
    this.window.length = 0;
    this.windowSizes.length = 0;
    this.windowSize = 0;
    this.windowTotal = 0;
    this.position = oldest;
    for (const subscriber of lost) subscriber.lost?.(error);
  }

  /** A read that started at `started` succeeded: every commit notified before then is read. */
  private readUpTo(started: number): void {
    if (this.unreadSince !== undefined && this.unreadSince <= started) this.unreadSince = undefined;
  }

  /**
   * The page of the log right after `cursor` (at most `pageSize` changes and `pageBytes` bytes,
   * none past `to`). Ticks
   * have no gaps, so a page that is empty or does not start right after the cursor means changes
   * in between are gone (pruned meanwhile): that fails, rather than skip them. A connection that
   * fails so reconnects, and the handshake then sends it a fresh snapshot instead.
   */
  private async readPage(cursor: bigint, to: bigint): Promise<TickedBatch> {
    const changes = (await this.reader.readFrom(cursor, this.pageSize, this.pageBytes)).filter(
      (c) => c.tick <= to,
    );
    if (changes.length === 0) {
      throw new LogPrunedError(
        `the change log has no changes after position ${cursor}, though it was ticked up to ${to}`,
      );
    }
    if (changes[0]!.tick !== cursor + 1n) {
      throw new LogPrunedError(
        `the changes after position ${cursor} were pruned from the change log (it resumes at ${changes[0]!.tick})`,
      );
    }
    return { from: cursor, to: changes[changes.length - 1]!.tick, changes };
  }

  /** Hears every batch the hub reads (the server's metrics count its changes). */
  onBatch: ((batch: TickedBatch) => void) | undefined;

  /** Delivers one batch to everyone and keeps it in the window; synchronous, so no one misses it. */
  private publish(batch: TickedBatch): void {
    this.position = batch.to;
    this.onBatch?.(batch);
    const bytes = batchBytes(batch);
    this.window.push(batch);
    this.windowSizes.push(bytes);
    this.windowSize += batch.changes.length;
    this.windowTotal += bytes;
    while (
      this.window.length > 1 &&
      (this.windowSize > this.windowChanges ||
        this.windowTotal > this.windowBytes ||
        this.window.length > 1000)
    ) {
      this.windowSize -= this.window.shift()!.changes.length;
      this.windowTotal -= this.windowSizes.shift()!;
    }
    for (const subscriber of this.subscribers) subscriber.deliver(batch);
  }

  /**
   * Brings a subscriber from `cursor` up to the hub's position (from the window when it reaches
   * back that far, else page by page from the log, waiting for the subscriber to drain between
   * pages), then makes it live. Batches may start before `cursor`; the subscriber skips ticks it
   * has. Resolves when it is live.
   */
  async attach(subscriber: HubSubscriber, cursor: bigint): Promise<void> {
    for (;;) {
      if (this.closed) return;
      if (cursor >= this.position) break;
      const first = this.window[0];
      if (first && first.from <= cursor) {
        for (const batch of this.window) if (batch.to > cursor) subscriber.deliver(batch);
        break;
      }
      const page = await this.readPage(cursor, this.position);
      subscriber.deliver(page);
      cursor = page.to;
      await subscriber.drained();
    }
    // No await since the last check: nothing was published in between.
    this.subscribers.add(subscriber);
  }

  /** Stops delivering to a subscriber (its connection closed). */
  detach(subscriber: HubSubscriber): void {
    this.subscribers.delete(subscriber);
  }

  /** Stops reading; waits for a read in progress to end. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.subscribers.clear();
    await Promise.allSettled([this.current, this.next]);
  }
}
