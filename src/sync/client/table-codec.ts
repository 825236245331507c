import type { Dialect } from '../../dialect/dialect.js';
import { is } from '../../entity.js';
import { SynclineError, SyncProtocolError } from '../../errors.js';
import type { Column } from '../../schema/column.js';
import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import { type JsonRow, type JsonValue, valueDecoder, valueEncoder } from '../protocol/value-codec.js';
import { bytesToHex, hexToBytes } from './hex.js';
import { holdsInteger64 } from './outbox-triggers.js';

type AnyColumn = Column<any, any, any, any>;

/**
 * Kinds SQLite stores as the app value itself, whose `toDriver` only repeats the check that
 * `valueDecoder` has just made (sqlite-types.ts): skipping it is a fifth of a snapshot's cost.
 */
const STORED_AS_DECODED: ReadonlySet<string> = new Set([
  'uuid',
  'text',
  'integer',
  'real',
  'numeric',
  'enum',
]);

/** The range of ms a Date can hold (ECMA-262 section 21.4.1.22). */
const MAX_DATE_MS = 8.64e15;

/**
 * For a timestamp or a boolean, the SQLite value straight from its wire form, when SQLite stores
 * them as they travel (a timestamp's ms, a boolean's 1 or 0): building a Date per timestamp was a
 * tenth of a snapshot's decoding. Anything else (null, a bad value, another dialect) takes `full`,
 * the decode-then-encode path, with its errors.
 */
function storedDirectly(
  kind: string,
  toDriver: (value: unknown) => unknown,
  full: (json: unknown) => unknown,
): (json: unknown) => unknown {
  if (kind === 'timestamp' && toDriver(new Date(1)) === 1) {
    return (json) =>
      typeof json === 'number' && json !== 0 && Number.isSafeInteger(json) && Math.abs(json) <= MAX_DATE_MS
        ? json
        : full(json);
  }
  if (kind === 'boolean' && toDriver(true) === 1 && toDriver(false) === 0) {
    return (json) => (json === true ? 1 : json === false ? 0 : full(json));
  }
  return full;
}

function keyPart(value: unknown): string {
  if (value === null || value === undefined) return '\u0000';
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return `\u0002${bytesToHex(value)}`;
  // Numbers and bigints alike: an integer read with bigints on must match one decoded as a number.
  return String(value);
}

/**
 * How the rows of one synced table cross between the wire and SQLite on the client: protocol JSON
 * (value codec, keyed by SQL column name) to the values SQLite stores (the column type's SQLite
 * encoding), and the JSON the capture triggers write back to protocol JSON (the column type's
 * SQLite decoding, then `valueEncoder`). Converters are built once per column.
 *
 * @example
 *   const codec = new TableCodec(todos, sqliteDialect);
 *   const values = codec.storageRow(change.values!); // aligned with codec.columns
 */
export class TableCodec {
  readonly name: string;
  readonly columns: readonly AnyColumn[];
  readonly keyColumns: readonly AnyColumn[];
  /** Where each key column sits in `columns`. */
  readonly keyIndexes: readonly number[];
  private readonly indexes = new Map<string, number>();
  private readonly toStorage: ((json: unknown) => unknown)[];
  private readonly fromOutbox: ((stored: unknown) => unknown)[];
  private readonly toWire: ((stored: unknown) => JsonValue)[];

  constructor(
    readonly table: AnyTable,
    dialect: Dialect,
  ) {
    this.name = table.$name;
    this.columns = table.$columnList;
    this.keyColumns = table.$primaryKeyColumns;
    for (const [i, column] of this.columns.entries()) this.indexes.set(column.name, i);
    this.keyIndexes = this.keyColumns.map((c) => this.indexes.get(c.name)!);
    this.toStorage = this.columns.map((column) => {
      const physical = dialect.physicalType(column.type);
      const decode = valueDecoder(column.type);
      if (STORED_AS_DECODED.has(column.type.kind)) return decode;
      const full = (json: unknown) => (json === null ? null : physical.toDriver(decode(json)));
      return storedDirectly(column.type.kind, physical.toDriver, full);
    });
    this.fromOutbox = this.columns.map((column) => {
      if (column.type.kind === 'blob') return (stored) => hexToBytes(String(stored));
      if (column.type.kind === 'bigint') return (stored) => BigInt(stored as string);
      if (holdsInteger64(column)) {
        return (stored) => (typeof stored === 'string' && /^-?\d+$/.test(stored) ? BigInt(stored) : stored);
      }
      return (stored) => stored;
    });
    this.toWire = this.columns.map((column, i) => {
      const physical = dialect.physicalType(column.type);
      const pre = this.fromOutbox[i];
      const encode = valueEncoder(column.type);
      return (stored) => (stored === null ? null : encode(physical.fromDriver(pre(stored))));
    });
  }

  /** The position of a column (by SQL name) in `columns`, or undefined for an unknown name. */
  columnIndex(name: string): number | undefined {
    return this.indexes.get(name);
  }

  private unknownColumn(name: string): never {
    const known = this.columns.map((c) => c.name).join(', ');
    throw new SyncProtocolError(
      `table "${this.name}" has no column "${name}" (its columns: ${known}); the server's schema differs from the client's, so check both run the same schema version`,
    );
  }

  private fail(column: AnyColumn, error: unknown): never {
    const why = is(error, SynclineError) ? error.message : String(error);
    throw new SyncProtocolError(`the server sent a bad value for ${this.name}.${column.name}: ${why}`, {
      cause: error,
    });
  }

  /**
   * A protocol row as the values SQLite stores, aligned with `columns`; `undefined` marks a column
   * the row does not carry. Throws `SyncProtocolError` for an unknown column or a wrong value.
   */
  storageRow(json: JsonRow): unknown[] {
    const out: unknown[] = new Array(this.columns.length);
    this.storageInto(json, out, 0);
    return out;
  }

  /**
   * Writes a protocol row's storage values into `out` from `offset` on (one slot per column,
   * `undefined` for a column the row does not carry), so a batch of rows fills one flat parameter
   * array without an array per row. Returns how many columns the row carries.
   */
  storageInto(json: JsonRow, out: unknown[], offset: number): number {
    const columns = this.columns;
    let present = 0;
    for (let i = 0; i < columns.length; i++) {
      const value = json[columns[i].name];
      if (value === undefined) {
        out[offset + i] = undefined;
        continue;
      }
      present++;
      try {
        out[offset + i] = this.toStorage[i](value);
      } catch (error) {
        this.fail(columns[i], error);
      }
    }
    let keys = 0;
    for (const _ in json) keys++;
    if (keys !== present) {
      for (const name in json) if (!this.indexes.has(name)) this.unknownColumn(name);
    }
    return present;
  }

  /**
   * A reader of the rows of a snapshot chunk by column whose columns are `names`: it writes row
   * `row`'s storage values into `out` from `offset` on (as `storageInto` does, `undefined` for a
   * column the chunk lacks) and returns how many columns it carries. The columns are looked up
   * once per chunk, not per row. Throws `SyncProtocolError` for an unknown column or a bad value.
   *
   * @example
   *   const read = codec.columnsReader(chunk.columns);
   *   const whole = read(chunk.values, 0, params, 0) === codec.columns.length;
   */
  columnsReader(
    names: readonly string[],
  ): (values: readonly (readonly unknown[])[], row: number, out: unknown[], offset: number) => number {
    const targets = names.map((name) => this.indexes.get(name) ?? this.unknownColumn(name));
    const decoders = targets.map((i) => this.toStorage[i]!);
    const carried = new Set(targets);
    const missing = this.columns.map((_, i) => i).filter((i) => !carried.has(i));
    const n = targets.length;
    return (values, row, out, offset) => {
      for (let m = 0; m < missing.length; m++) out[offset + missing[m]!] = undefined;
      for (let c = 0; c < n; c++) {
        try {
          out[offset + targets[c]!] = decoders[c]!(values[c]![row]);
        } catch (error) {
          this.fail(this.columns[targets[c]!]!, error);
        }
      }
      return n;
    };
  }

  /** The key values of a protocol primary key, in `keyColumns` order (all must be there). */
  storageKey(pk: JsonRow): unknown[] {
    const row = this.storageRow(pk);
    return this.keyIndexes.map((i, n) => {
      const value = row[i];
      if (value === undefined || value === null) {
        throw new SyncProtocolError(
          `a primary key of table "${this.name}" lacks its column "${this.keyColumns[n].name}"`,
        );
      }
      return value;
    });
  }

  /** One string per row identity, from key values as SQLite stores them (in `keyColumns` order). */
  keyOf(values: readonly unknown[]): string {
    if (values.length === 1) return keyPart(values[0]);
    let key = '';
    for (let i = 0; i < values.length; i++) key += (i > 0 ? '\u0001' : '') + keyPart(values[i]);
    return key;
  }

  /** The identity of a row from a primary key the capture triggers wrote. */
  keyOfOutboxPk(pk: Record<string, unknown>): string {
    return this.keyOf(
      this.keyIndexes.map((i) => {
        const stored = pk[this.columns[i].name];
        return stored === null || stored === undefined ? null : this.fromOutbox[i](stored);
      }),
    );
  }

  /** The key values of a primary key the capture triggers wrote, as SQLite stores them. */
  storageKeyFromOutbox(pk: Record<string, unknown>): unknown[] {
    return this.keyIndexes.map((i) => {
      const stored = pk[this.columns[i].name];
      return stored === null || stored === undefined ? null : this.fromOutbox[i](stored);
    });
  }

  /** One column's value as the capture triggers wrote it (`index` in `columns`), as SQLite stores it. */
  storageFromOutbox(index: number, stored: unknown): unknown {
    return stored === null || stored === undefined ? null : this.fromOutbox[index](stored);
  }

  /** A row (or some of its columns) the capture triggers wrote, as protocol JSON. */
  wireFromOutbox(stored: Record<string, unknown>): JsonRow {
    const out: JsonRow = {};
    for (const name in stored) {
      const i = this.indexes.get(name);
      // A column an app update dropped (renames move the key: see the migrator): the local
      // table no longer has it, so neither does the write.
      if (i === undefined) continue;
      out[name] = this.toWire[i](stored[name]);
    }
    return out;
  }
}

/**
 * The codecs of every synced table of a schema, by SQL table name.
 *
 * @example
 *   const codecs = tableCodecs(appSchema, db.dialect);
 *   codecs.get('todos')?.storageRow(row);
 */
export function tableCodecs(schema: Schema, dialect: Dialect): Map<string, TableCodec> {
  const codecs = new Map<string, TableCodec>();
  for (const table of schema.tableList) {
    if (!table.$local) codecs.set(table.$name, new TableCodec(table, dialect));
  }
  return codecs;
}

/**
 * The codec of a table a server message names, or a `SyncProtocolError` that says it is not a
 * synced table of this client's schema.
 *
 * @example
 *   const codec = codecFor(codecs, change.table);
 */
export function codecFor(codecs: ReadonlyMap<string, TableCodec>, table: string): TableCodec {
  const codec = codecs.get(table);
  if (!codec) {
    throw new SyncProtocolError(
      `the server sent a row of table ${JSON.stringify(table)}, which is not a synced table of this client's schema (synced: ${[...codecs.keys()].join(', ')}); check both run the same schema version`,
    );
  }
  return codec;
}
