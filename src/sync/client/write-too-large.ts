import { entityKind } from '../../entity.js';
import { SyncProtocolError } from '../../errors.js';
import type { RowKey } from './remote-apply.js';

/**
 * A local transaction (batch `mutationId`) holds a change bigger than any push the server takes
 * (its `maxMessageBytes`), so it was taken out of the outbox without being sent, as if the server
 * had rejected it: the pushes after it go on. `rows` are the rows it wrote (table and key as the
 * server knows them), whose server version the client fetches to undo the local write; `bytes` is
 * the change's size in a push and `limit` the server's limit.
 *
 * @example
 *   sync.on('error', (e) => { if (e instanceof WriteTooLargeError) toast(`not saved: ${e.message}`); });
 */
export class WriteTooLargeError extends SyncProtocolError {
  static override readonly [entityKind]: string = 'WriteTooLargeError';
  constructor(
    readonly mutationId: number,
    readonly rows: readonly RowKey[],
    readonly bytes: number,
    readonly limit: number,
    /** The message, for a write that is not one change (a mutation). */
    message?: string,
  ) {
    const table = rows[0]?.table ?? 'a table';
    super(
      message ??
        `a local write to table "${table}" takes ${bytes} bytes, over the server's limit of ${limit} bytes per message (maxMessageBytes), so no push can carry it; it was dropped from the outbox (batch ${mutationId}) and the row is fetched back from the server: write smaller values (store big ones elsewhere and sync a reference), or raise the server's limit`,
    );
  }
}
