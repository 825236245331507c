import { sqliteWasm } from '../../../src/drivers/sqlite-wasm/index.js';
import { asc, type Database, openDatabase } from '../../../src/index.js';
import { type SyncClient, syncClient } from '../../../src/sync/client/index.js';
import { browserSyncSchema, notes } from '../browser-sync-schema.js';

/** A note's id from a number: the tests write many and compare them by number. */
export function noteId(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

/**
 * What the many-tabs test does in each tab, the test's own page and the pages it opens alike: a
 * database opened on a shared name, a live query of its notes, optionally a sync client, and
 * writes that record which of them were acknowledged.
 */
export class TabApp {
  private driver: ReturnType<typeof sqliteWasm> | undefined;
  private db: Database<typeof browserSyncSchema> | undefined;
  private sync: SyncClient | undefined;
  /** The live query's latest result: note bodies in id order. */
  seen: string[] = [];
  /** Numbers of the notes whose insert resolved (committed). */
  readonly acknowledged: number[] = [];
  /** Messages of the inserts that failed. */
  readonly failed: string[] = [];
  private stopLive: (() => void) | undefined;

  async open(name: string, sync?: { url: string; token: string }): Promise<void> {
    this.driver = sqliteWasm({ name });
    this.db = await openDatabase(browserSyncSchema, this.driver);
    const live = this.db.select({ body: notes.body }).from(notes).orderBy(asc(notes.id)).watch();
    this.stopLive = live.subscribe((rows) => {
      this.seen = rows.map((row) => row.body);
    });
    if (sync) {
      this.sync = syncClient(this.db, {
        url: sync.url,
        token: sync.token,
        shapes: [{ table: notes }],
        backoff: { initialMs: 10, maxMs: 200 },
      });
      await this.sync.start();
    }
  }

  private database(): Database<typeof browserSyncSchema> {
    if (!this.db) throw new Error('open() first');
    return this.db;
  }

  latest(): string[] {
    return this.seen;
  }

  /**
   * Opens a transaction that inserts note `n` and then never ends (until the tab closes): the
   * connection stays held by this tab.
   */
  holdTransaction(n: number): Promise<void> {
    return new Promise((inserted) => {
      void this.database()
        .transaction(async (tx) => {
          await tx.insert(notes).values({ id: noteId(n), body: 'never committed' });
          inserted();
          await new Promise(() => {});
        })
        .catch(() => {});
    });
  }

  owns(): boolean {
    return this.driver?.ownsDatabase ?? false;
  }

  storage(): string | undefined {
    return this.driver?.storage;
  }

  async insert(n: number, body: string): Promise<void> {
    await this.database()
      .insert(notes)
      .values({ id: noteId(n), body });
  }

  /** Inserts notes `from` .. `to - 1` one after another, recording each outcome; never throws. */
  async insertRange(from: number, to: number, prefix: string): Promise<void> {
    for (let n = from; n < to; n++) {
      try {
        await this.insert(n, `${prefix}${n}`);
        this.acknowledged.push(n);
      } catch (error) {
        this.failed.push((error as Error).message);
      }
    }
  }

  /** Starts `insertRange` without waiting for it (the test closes another tab meanwhile). */
  startInserts(from: number, to: number, prefix: string): void {
    this.running = this.insertRange(from, to, prefix);
  }

  private running: Promise<void> = Promise.resolve();

  acknowledgedSoFar(): number[] {
    return this.acknowledged;
  }

  async insertsDone(): Promise<{ acknowledged: number[]; failed: string[] }> {
    await this.running;
    return { acknowledged: this.acknowledged, failed: this.failed };
  }

  async bodies(): Promise<string[]> {
    const rows = await this.database().select({ body: notes.body }).from(notes).orderBy(asc(notes.id));
    return rows.map((row) => row.body);
  }

  /** A transaction that inserts two notes and reads them back inside it. */
  async twoInOneTransaction(n: number, body: string): Promise<number> {
    return await this.database().transaction(async (tx) => {
      await tx.insert(notes).values({ id: noteId(n), body });
      await tx.insert(notes).values({ id: noteId(n + 1), body });
      const rows = await tx.select({ id: notes.id }).from(notes);
      return rows.length;
    });
  }

  syncStatus(): string | undefined {
    return this.sync?.status;
  }

  async flush(): Promise<void> {
    await this.sync?.flush();
  }

  async caughtUp(): Promise<void> {
    await this.sync?.caughtUp();
  }

  ownsConnection(): boolean {
    return this.sync?.ownsConnection ?? false;
  }

  async close(): Promise<void> {
    this.stopLive?.();
    await this.sync?.stop();
    await this.db?.close();
  }
}
