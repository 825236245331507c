/**
 * Where an initial sync's time goes: each stage of the path a snapshot takes, run alone on the
 * same rows in the same run, so the stages add up against the end-to-end time and the raw insert.
 * Server read (PostgreSQL through the cursor, rows encoded for the wire: `readSnapshot` into a sink
 * that keeps the chunks, as for a client that reads chunks by column), encoding (the server's
 * `JSON.stringify` of the chunks PostgreSQL did not build), parsing (the client's
 * `parseServerFrame`: JSON.parse and validation), decoding (wire values to what SQLite
 * stores: `TableCodec.storageInto`), and the SQLite write (the client's `SnapshotApplier` on a fresh
 * database, decoding included, less the decoding time). Server and client share one thread in the
 * bench, so only PostgreSQL's own work can overlap the rest.
 */
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { openDatabase } from '../../src/index.js';
import { LocalReplica } from '../../src/sync/client/local-replica.js';
import { columnChunkRows, parseServerFrame, type SnapshotChunk } from '../../src/sync/protocol/messages.js';
import { readSnapshot } from '../../src/sync/server/snapshot-reader.js';
import { benchSchema, type items, type itemsBig } from './bench-schema.js';
import type { BenchServer } from './bench-server.js';
import { formatMs } from './outcome.js';

/**
 * The time of each stage of one snapshot of a table, in ms (see the module comment).
 *
 * @example
 *   const stages = await measureSnapshotStages(bench, items);
 *   console.log(describeStages(stages, 2700, 210));
 */
export interface SnapshotStages {
  readonly rows: number;
  readonly bytes: number;
  readonly chunks: number;
  readonly serverRead: number;
  readonly encode: number;
  readonly parse: number;
  readonly decode: number;
  readonly write: number;
}

/**
 * Runs each stage of a snapshot of `table` alone, in order, and times it.
 *
 * @example
 *   const stages = await measureSnapshotStages(bench, items);
 */
export async function measureSnapshotStages(
  bench: BenchServer,
  table: typeof items | typeof itemsBig,
): Promise<SnapshotStages> {
  // As a connection whose client reads chunks by column: PostgreSQL builds the JSON of each chunk
  // when it can encode every column, else the server encodes the rows (then stringified below).
  const frames: (string | object)[] = [];
  let started = performance.now();
  await readSnapshot(bench.server.db, [{ id: table.$name, table, where: undefined }], {
    send: (message) => void frames.push(message),
    sendColumns: (message) => void frames.push(message),
    sendText: (text) => void frames.push(text),
    drained: async () => {},
    aborted: () => false,
  });
  const serverRead = performance.now() - started;

  started = performance.now();
  const texts = frames.map((frame) => (typeof frame === 'string' ? frame : JSON.stringify(frame)));
  const encode = performance.now() - started;
  frames.length = 0;

  started = performance.now();
  const parsed = texts.map((text) => parseServerFrame(text) as SnapshotChunk);
  const parse = performance.now() - started;

  const handle = new BetterSqlite3(':memory:');
  const db = await openDatabase(benchSchema, sqlite({ database: handle }));
  try {
    const replica = new LocalReplica(db);
    await replica.open();
    const codec = replica.context.codecs.get(table.$name)!;
    const scratch: unknown[] = new Array(codec.columns.length);
    started = performance.now();
    for (const chunk of parsed) {
      if ('rows' in chunk) for (const row of chunk.rows) codec.storageInto(row, scratch, 0);
      else {
        const read = codec.columnsReader(chunk.columns);
        for (let r = 0; r < columnChunkRows(chunk); r++) read(chunk.values, r, scratch, 0);
      }
    }
    const decode = performance.now() - started;

    const shapes = [{ id: table.$name, table: table.$name }];
    const applier = replica.snapshot(shapes, 'stages', undefined);
    started = performance.now();
    for (const chunk of parsed) await applier.apply(chunk);
    const applied = performance.now() - started;
    return {
      rows: parsed.reduce(
        (sum, chunk) => sum + ('rows' in chunk ? chunk.rows.length : columnChunkRows(chunk)),
        0,
      ),
      bytes: texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0),
      chunks: parsed.length,
      serverRead,
      encode,
      parse,
      decode,
      write: Math.max(0, applied - decode),
    };
  } finally {
    await db.close();
    handle.close();
  }
}

/**
 * The stages as lines, each with its share of the end-to-end time `syncMs` and its multiple of
 * the raw insert `rawMs` (both measured in the same run).
 *
 * @example
 *   for (const line of describeStages(stages, 2700, 210)) progress(line);
 */
export function describeStages(stages: SnapshotStages, syncMs: number, rawMs: number): string[] {
  const entries: [string, number][] = [
    ['server read (PostgreSQL cursor, rows encoded for the wire)', stages.serverRead],
    ['server JSON.stringify (chunks PostgreSQL did not build)', stages.encode],
    ['client parse (JSON.parse + validation)', stages.parse],
    ['client decode (wire values to SQLite values)', stages.decode],
    ['client SQLite write (SnapshotApplier, less decode)', stages.write],
  ];
  const sum = entries.reduce((total, [, ms]) => total + ms, 0);
  const share = (ms: number) =>
    `${formatMs(ms).padStart(8)}  ${((100 * ms) / syncMs).toFixed(0).padStart(3)}% of the sync  ${(ms / rawMs).toFixed(2)}x raw`;
  return [
    `breakdown of one ${stages.rows.toLocaleString('en-US')}-row snapshot (${stages.chunks} chunks, ${(stages.bytes / 1e6).toFixed(1)} MB of JSON), each stage alone:`,
    ...entries.map(([label, ms]) => `  ${label.padEnd(58)} ${share(ms)}`),
    `  ${'sum of the stages'.padEnd(58)} ${share(sum)}`,
    `  ${'end-to-end sync (median)'.padEnd(58)} ${share(syncMs)}`,
    `  ${'raw better-sqlite3 insert (baseline)'.padEnd(58)} ${share(rawMs)}`,
  ];
}
