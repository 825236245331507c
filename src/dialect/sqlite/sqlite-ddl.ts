import { DdlCompiler } from '../ddl-compiler.js';

/** A random version-4 UUID in SQLite's own functions, for rows inserted with raw SQL. */
const RANDOM_UUID =
  "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))";

/** Milliseconds since the epoch, which is how SQLite stores timestamp() columns. */
const NOW_MS = "(CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER))";

export class SqliteDdlCompiler extends DdlCompiler {
  protected functionDefault(kind: 'random' | 'now'): string {
    return kind === 'random' ? RANDOM_UUID : NOW_MS;
  }
}
