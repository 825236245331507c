import type { Database } from '../../database/database.js';
import { RowWriter } from './row-writer.js';
import { type TableCodec, tableCodecs } from './table-codec.js';

/**
 * What every apply step needs: the database, the codec of each synced table, and one row writer
 * per table (each caching its SQL texts), made once per client.
 *
 * @example
 *   const context = new ApplyContext(db);
 *   const writer = context.writer(context.codecs.get('todos')!);
 */
export class ApplyContext {
  readonly codecs: ReadonlyMap<string, TableCodec>;
  private readonly writers = new Map<string, RowWriter>();

  constructor(readonly db: Database) {
    this.codecs = tableCodecs(db.schema, db.dialect);
  }

  /** The row writer of a synced table. */
  writer(codec: TableCodec): RowWriter {
    let writer = this.writers.get(codec.name);
    if (!writer) this.writers.set(codec.name, (writer = new RowWriter(codec)));
    return writer;
  }
}
