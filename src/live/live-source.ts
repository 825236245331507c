import type { TableChanges } from '../database/table-changes.js';
import { resultsEqual } from './result-equality.js';
import type { RowChange } from './row-changes.js';

/**
 * For a single-table query with a simple filter: the table, and a test of one row (true, false,
 * or null for "cannot tell"). A change to a row that matches neither before nor after is skipped.
 */
export interface RowFilter {
  readonly table: string;
  readonly matches: (row: Readonly<Record<string, unknown>>) => boolean | null;
}

function mayMatch(filter: RowFilter, image: Readonly<Record<string, unknown>> | null | undefined): boolean {
  if (image === null) return false;
  if (image === undefined) return true;
  return filter.matches(image) !== false;
}

export interface LiveSubscriber<T> {
  next(value: T): void;
  error(error: unknown): void;
  /** The live query stopped while this subscriber was still on it (the database closed). */
  complete?(): void;
}

/**
 * One watched query (one SQL text and parameters) and everyone subscribed to it. It runs the query
 * once at start and after every change to a table it reads, with at most one run in flight and one
 * queued, so a burst of commits costs two runs and the last state is always read. Subscribers hear
 * a result only when it differs from the one before.
 */
export class LiveSource<T> {
  private readonly subscribers = new Set<LiveSubscriber<T>>();
  private last: { value: T } | undefined;
  /** The last run failed: the next good result is emitted even when it equals `last`. */
  private failed = false;
  private running = false;
  private queued = false;
  private stopped = false;
  private unsubscribeTables: (() => void) | undefined;
  /** Runs of the query so far (tests and benchmarks read it). */
  runs = 0;

  constructor(
    private readonly tables: readonly string[],
    private readonly execute: () => Promise<T>,
    private readonly changes: TableChanges,
    private readonly onIdle: () => void,
    /** Set when the query's filter can be tested on changed rows. */
    readonly rowFilter?: RowFilter,
  ) {}

  /** True when a change may alter the result: rows of the table are unknown, or one may match. */
  private affectedBy(
    tables: ReadonlySet<string>,
    rows: ReadonlyMap<string, readonly RowChange[]> | undefined,
  ): boolean {
    const filter = this.rowFilter;
    if (!filter || !rows) return true;
    // Another table this query reads (a subquery in the select list) changed too: its rows say nothing.
    for (const table of this.tables) if (table !== filter.table && tables.has(table)) return true;
    const changes = rows.get(filter.table);
    if (!changes) return true;
    return changes.some((c) => mayMatch(filter, c.before) || mayMatch(filter, c.after));
  }

  get value(): T | undefined {
    return this.last?.value;
  }

  add(subscriber: LiveSubscriber<T>): () => void {
    this.subscribers.add(subscriber);
    if (!this.unsubscribeTables) {
      this.unsubscribeTables = this.changes.subscribe(this.tables, (tables, rows) => {
        if (this.affectedBy(tables, rows)) this.refresh();
      });
      this.refresh();
    } else if (this.last) {
      // A late subscriber gets the current result first, as an early one did.
      const current = this.last;
      queueMicrotask(() => {
        if (this.subscribers.has(subscriber) && this.last === current) subscriber.next(current.value);
      });
    }
    return () => {
      if (!this.subscribers.delete(subscriber) || this.subscribers.size > 0) return;
      this.stop();
    };
  }

  /** Stops listening and forgets subscribers (last unsubscribe, or the database closing). */
  stop(): void {
    if (this.stopped) return;
    // Whoever is still subscribed (an iterator waiting in `for await`) hears that nothing more comes.
    this.tell((subscriber) => subscriber.complete?.());
    this.stopped = true;
    this.subscribers.clear();
    this.unsubscribeTables?.();
    this.unsubscribeTables = undefined;
    this.onIdle();
  }

  /** Re-runs the query now, or after the run in flight when there is one. */
  refresh(): void {
    if (this.stopped) return;
    if (this.running) {
      this.queued = true;
      return;
    }
    this.running = true;
    this.runs++;
    this.execute()
      .then(
        (value) => {
          if (this.stopped) return;
          // After an error the subscribers' last word was that error; they need to hear it works again.
          if (!this.failed && this.last && resultsEqual(this.last.value, value)) return;
          this.failed = false;
          this.last = { value };
          this.tell((subscriber) => subscriber.next(value));
        },
        (error) => {
          if (this.stopped) return;
          this.failed = true;
          this.tell((subscriber) => subscriber.error(error));
        },
      )
      .finally(() => {
        this.running = false;
        if (this.queued && !this.stopped) {
          this.queued = false;
          this.refresh();
        }
      });
  }

  /** Calls every current subscriber; one that throws neither stops the others nor the live query. */
  private tell(call: (subscriber: LiveSubscriber<T>) => void): void {
    for (const subscriber of [...this.subscribers]) {
      // One that left while others were being told (a callback may unsubscribe another) hears no more.
      if (!this.subscribers.has(subscriber)) continue;
      try {
        call(subscriber);
      } catch (error) {
        // The subscriber's own bug: report it where it would surface had it run on its own.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
