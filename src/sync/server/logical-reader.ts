import type { Database } from '../../database/database.js';
import { ChangeLogReader, type TickedBatch } from './change-log-reader.js';
import type { LogicalConsumer } from './logical-consumer.js';
import type { ServerLog } from './server-log.js';

/**
 * The change-log reader of a server in logical mode: before it ticks, it waits until the consumer
 * has logged every transaction committed so far, so "read everything committed" means what it
 * means with triggers (a push's own changes are streamed before its ack, `caughtUp()` sees a
 * direct write made just before). When no consumer answers in time it reads what is there and
 * warns (the consumer's own commits wake the hubs again).
 *
 * @example
 *   const reader = new CaughtUpReader(db, consumer, log);
 */
export class CaughtUpReader extends ChangeLogReader {
  private warned = false;

  constructor(
    db: Database,
    private readonly consumer: LogicalConsumer,
    private readonly log: ServerLog,
  ) {
    super(db);
  }

  override async readNew(limit?: number, maxBytes?: number): Promise<TickedBatch> {
    try {
      await this.consumer.caughtUp();
      this.warned = false;
    } catch (error) {
      if (!this.warned) {
        this.warned = true;
        this.log.warn('capture.behind', (error as Error).message, { error });
      }
    }
    return super.readNew(limit, maxBytes);
  }
}
