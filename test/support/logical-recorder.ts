import type { Schema } from '../../src/index.js';
import type { ServerMessage } from '../../src/sync/protocol/messages.js';
import { helloMessage, RawClient } from './sync-server.js';
import { waitFor } from './wait.js';

/** One change or snapshot row as the recorder saw it, in arrival order. */
export interface RecordedEvent {
  readonly kind: 'insert' | 'update' | 'delete' | 'snapshot';
  readonly key: string;
  readonly values: Record<string, unknown> | undefined;
}

/**
 * A protocol client that follows one shape across reconnects, as a real client does with its
 * cursor: `connect(url)` says hello with the cursor it holds (none the first time), and every
 * `snapshot` and `changes` message it receives is recorded in order, so a test can check that each
 * change came exactly once and in commit order, and whether the server sent a fresh snapshot.
 *
 * @example
 *   const recorder = new ShapeRecorder(appSchema, 'notes', 'id', token);
 *   await recorder.connect(server.url);
 *   await recorder.until((r) => r.rows.size === 100);
 */
export class ShapeRecorder {
  /** Every change and snapshot row, in the order they arrived. */
  readonly events: RecordedEvent[] = [];
  /** The rows the client holds now, by key (as text). */
  readonly rows = new Map<string, Record<string, unknown>>();
  /** How many snapshots (last chunks) arrived. */
  snapshots = 0;
  cursor: string | undefined;
  private client: RawClient | undefined;
  private read = 0;
  private snapshotRows: Map<string, Record<string, unknown>> | undefined;
  private dropped = false;
  /** Where `until` connects again when the server closed the socket (as a real client does). */
  reconnectTo: string | undefined;
  /** How many times `until` connected again. */
  reconnects = 0;

  constructor(
    private readonly schema: Schema,
    private readonly table: string,
    /** The table's (single-column) primary key. */
    private readonly keyColumn: string,
    private readonly token: string,
  ) {}

  /** Connects to `url` with the cursor held so far and waits for the welcome. */
  async connect(url: string): Promise<void> {
    const client = await RawClient.connect(url);
    this.client = client;
    this.read = 0;
    this.dropped = false;
    void client.closed.then(() => {
      if (this.client === client) this.dropped = true;
    });
    client.send(
      helloMessage(this.schema, {
        token: this.token,
        shapes: [{ id: this.table, table: this.table }],
        ...(this.cursor ? { cursor: this.cursor } : {}),
      }),
    );
    await client.next('welcome');
  }

  /** Records what arrived since the last call. */
  poll(): void {
    const received = this.client?.received ?? [];
    while (this.read < received.length) this.take(received[this.read++]!);
  }

  /** Waits (polling, bounded) until `check` holds. */
  async until(check: (recorder: this) => boolean, timeoutMs = 20_000, what = 'the recorder'): Promise<void> {
    await waitFor(
      async () => {
        this.poll();
        if (this.dropped && this.reconnectTo && !check(this)) {
          this.reconnects++;
          await this.connect(this.reconnectTo);
        }
        return check(this);
      },
      timeoutMs,
      what,
    );
  }

  async close(): Promise<void> {
    this.poll();
    const client = this.client;
    this.client = undefined;
    await client?.close();
  }

  private take(message: ServerMessage): void {
    if (message.type === 'snapshot') {
      this.snapshotRows ??= new Map();
      for (const row of message.rows) {
        const key = String(row[this.keyColumn]);
        this.snapshotRows.set(key, row);
        this.events.push({ kind: 'snapshot', key, values: row });
      }
      if (message.last) {
        this.rows.clear();
        for (const [key, values] of this.snapshotRows) this.rows.set(key, values);
        this.snapshotRows = undefined;
        this.snapshots++;
        this.cursor = message.position;
      }
    } else if (message.type === 'changes') {
      for (const change of message.changes) {
        const key = String(change.pk[this.keyColumn]);
        this.events.push({ kind: change.op, key, values: change.values });
        if (change.op === 'delete') this.rows.delete(key);
        else this.rows.set(key, { ...this.rows.get(key), ...change.values });
      }
      this.cursor = message.to;
    }
  }
}
