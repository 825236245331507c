import { UsageError } from '../errors.js';
import type { Driver } from './driver.js';

const CHANNEL = 'syncline_tables';

/**
 * Table-change events shared between Database objects on one PostgreSQL (or PGlite) database, or
 * on one SQLite WASM database shared by browser tabs (the driver's `notify`):
 * after each local commit a NOTIFY names the changed tables, and every other feed that LISTENs
 * hands them to its own live queries. Its own notifications are recognised and skipped.
 */
export class ChangeFeed {
  private constructor(
    private readonly driver: Driver,
    private readonly id: string,
    private readonly unlisten: () => Promise<void>,
  ) {}

  static async start(
    driver: Driver,
    deliver: (tables: ReadonlySet<string>) => void,
    allTables: () => ReadonlySet<string>,
  ): Promise<ChangeFeed> {
    if (!driver.listen) {
      throw new UsageError(
        `changeNotifications needs LISTEN/NOTIFY, which the ${driver.name} driver does not have (PostgreSQL and PGlite do, and SQLite WASM shared between tabs)`,
      );
    }
    const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
    const unlisten = await driver.listen(
      CHANNEL,
      (payload) => {
        const bar = payload.indexOf('|');
        if (bar < 0 || payload.slice(0, bar) === id) return;
        try {
          const tables = JSON.parse(payload.slice(bar + 1));
          if (Array.isArray(tables)) deliver(new Set(tables.map(String)));
        } catch {
          // Not one of ours: ignore it.
        }
      },
      () => deliver(allTables()),
    );
    return new ChangeFeed(driver, id, unlisten);
  }

  /** Tells the other feeds; a failure here must not fail the write that already committed. */
  publish(tables: ReadonlySet<string>): void {
    const payload = `${this.id}|${JSON.stringify([...tables])}`;
    if (this.driver.notify) {
      this.driver.notify(CHANNEL, payload);
      return;
    }
    Promise.resolve()
      .then(() =>
        this.driver.query({
          sql: 'SELECT pg_notify($1, $2)',
          params: [CHANNEL, payload],
          arrayMode: true,
          needsBigInt: false,
        }),
      )
      .catch(() => {});
  }

  async stop(): Promise<void> {
    await this.unlisten();
  }
}
