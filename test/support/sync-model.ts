import type { Database, Schema } from '../../src/index.js';
import type { AnyColumn } from '../../src/schema/column.js';
import type { AnyTable } from '../../src/schema/table.js';
import { encodeRow, type JsonRow, type JsonValue } from '../../src/sync/protocol/value-codec.js';

/**
 * A model of what the sync server must hold, built from a recorded history of the changes it
 * applied, by the rules of docs/sync-internals.md ("Stamps and conflicts") and nothing else: per
 * column the newest stamp wins, a row exists when its newest insert is newer than its newest
 * delete, an update never revives a deleted (or never inserted) row but is kept in its image for
 * a (re-)creating insert older than it, a row with no stamps is older than every stamp, and equal
 * stamps (one batch) let the later change win. Every delete keeps the row's image, whoever made it
 * (a push, a direct write, a cascade): the final state depends only on the set of changes, except
 * for updates and deletes of a row that never existed, which are dropped.
 * Foreign keys with ON DELETE CASCADE remove the children a deleted parent had at that point,
 * with the parent's stamp as their tombstone (other foreign-key actions, SET NULL and ON UPDATE
 * CASCADE, are not modeled). Tests compare the server with it
 * (`compareWithServer`), so that a server that merely converges on a wrong outcome fails.
 * Values are kept encoded as sync messages encode them (`encodeRow`), keyed by SQL column name.
 */

/**
 * One change the server applied, as the model takes it: the table (SQL name), the operation, the
 * key and values encoded as in sync messages (`pk` and `values` by SQL column name; an insert's
 * values hold the whole row, with or without the key columns; an update's the columns it set; a
 * delete's none), and the stamp. `source` says who made it, for messages (`'A#3'`: client A's
 * batch 3; `'direct'`). `asMade` marks a change the server made whatever the row's stamps, as a
 * mutator's server run writes (read from the change log): its values and its stamp are the row's.
 *
 * @example
 *   const change: ModelChange = { table: 'items', op: 'update', pk: { id }, values: { title: 'x' }, hlc, source: 'A#3' };
 */
export interface ModelChange {
  readonly table: string;
  readonly op: 'insert' | 'update' | 'delete';
  readonly pk: JsonRow;
  readonly values?: JsonRow;
  readonly hlc: string;
  readonly source?: string;
  readonly asMade?: boolean;
}

/**
 * Where one column's value in the model came from: the stamp of the change that wrote it (none
 * for a row that existed before capture), and that change's `source`.
 *
 * @example
 *   const { hlc, source } = model.state('items', { id })!.columns.title!;
 */
export interface ModelColumn {
  readonly value: JsonValue;
  readonly hlc: string | undefined;
  readonly source: string | undefined;
}

/**
 * What the model holds for one row: whether it exists, its columns (while it is deleted, its
 * image: the values it had, with newer updates merged in), the stamp of the insert that created
 * it and of the delete that removed it, and every change applied to it (to explain a difference).
 *
 * @example
 *   const state = model.state('todos', { id });
 *   if (state && !state.exists) console.log('deleted at', state.deleted);
 */
export interface ModelRowState {
  readonly table: string;
  readonly pk: JsonRow;
  readonly exists: boolean;
  readonly columns: Readonly<Record<string, ModelColumn>>;
  readonly created: string | undefined;
  readonly deleted: string | undefined;
  readonly history: readonly ModelChange[];
}

/**
 * One existing row of the model: its key, its values (SQL name → encoded value; columns no change
 * ever gave a value are absent) and the stamp of each.
 *
 * @example
 *   for (const row of model.rows('items')) console.log(row.pk.id, row.values.title, row.stamps.title);
 */
export interface ModelRow {
  readonly pk: JsonRow;
  readonly values: JsonRow;
  readonly stamps: Readonly<Record<string, string | undefined>>;
}

/**
 * One way the server differs from the model: the table, the row key (as JSON), the column
 * (absent when the whole row is missing on one side), what the model expects with the stamp and
 * source that decided it, and what the server has (`'missing'` for an absent row).
 *
 * @example
 *   const d: ModelDifference = { table: 'items', key: '["…"]', pk: { id }, column: 'title', expected: 'a', expectedStamp: h, expectedSource: 'B#2', actual: 'b' };
 */
export interface ModelDifference {
  readonly table: string;
  readonly key: string;
  readonly pk: JsonRow;
  readonly column?: string;
  readonly expected: JsonValue | 'missing';
  readonly expectedStamp?: string;
  readonly expectedSource?: string;
  readonly actual: JsonValue | 'missing';
}

interface Cascade {
  readonly child: AnyTable;
  /** Child column (SQL name) → the parent column it references. */
  readonly columns: readonly (readonly [string, string])[];
}

interface MutableRow {
  readonly table: string;
  readonly pk: JsonRow;
  exists: boolean;
  /** While deleted: the image (possibly empty when the row never existed here). */
  columns: Record<string, ModelColumn>;
  created: string | undefined;
  deleted: string | undefined;
  history: ModelChange[];
}

/**
 * A JSON text of `value` with object keys sorted, so that equal values compare equal whatever
 * order their keys came in (PostgreSQL's jsonb reorders them).
 *
 * @example
 *   canonicalJson({ b: 1, a: [2] }); // '{"a":[2],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value as object)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

/** `stamp` loses to `hlc` when it is older, equal (a later change of the same batch), or missing. */
function beats(hlc: string, stamp: string | undefined): boolean {
  return stamp === undefined || stamp <= hlc;
}

function latest(a: string | undefined, b: string): string {
  return a !== undefined && a > b ? a : b;
}

/**
 * The expected server state of the synced `tables`, built by applying recorded changes in the
 * order the server applied them. Only foreign-key cascades make that order matter (a cascade
 * removes the children that exist when the parent goes, whatever their stamps): everything else
 * gives the same rows in any order, which is the property being tested. An insert or update that
 * gives a child a parent the model does not hold is noted in `anomalies` (the server must have
 * refused it, so the history or its order is wrong).
 *
 * @example
 *   const model = new SyncModel(e2eSchema.tableList);
 *   for (const change of history) model.apply(change);
 *   expect(formatDifferences(await compareWithServer(model, t.server.db))).toBe('');
 */
export class SyncModel {
  /** Things the history implies the server could not have done (a child written without its parent). */
  readonly anomalies: string[] = [];
  private readonly tables = new Map<string, AnyTable>();
  private readonly data = new Map<string, Map<string, MutableRow>>();
  private readonly cascades = new Map<string, Cascade[]>();
  private readonly parents = new Map<string, { parent: string; columns: (readonly [string, string])[] }[]>();

  constructor(tables: readonly AnyTable[]) {
    for (const table of tables) {
      this.tables.set(table.$name, table);
      this.data.set(table.$name, new Map());
    }
    for (const child of tables) {
      const keys: { parent: AnyTable; columns: (readonly [string, string])[]; cascade: boolean }[] = [];
      for (const column of child.$columnList) {
        if (!column.references) continue;
        const target = column.references.target() as AnyColumn;
        keys.push({
          parent: target.table as AnyTable,
          columns: [[column.name, target.name]],
          cascade: column.references.onDelete === 'cascade',
        });
      }
      for (const fk of child.$foreignKeys) {
        const targets = fk.target() as readonly AnyColumn[];
        keys.push({
          parent: targets[0]!.table as AnyTable,
          columns: fk.columns.map((c, i) => [c.name, targets[i]!.name] as const),
          cascade: fk.onDelete === 'cascade',
        });
      }
      for (const key of keys) {
        const parent = key.parent.$name;
        if (!this.tables.has(parent)) continue;
        if (key.cascade) {
          const list = this.cascades.get(parent) ?? [];
          list.push({ child, columns: key.columns });
          this.cascades.set(parent, list);
        }
        const list = this.parents.get(child.$name) ?? [];
        list.push({ parent, columns: [...key.columns] });
        this.parents.set(child.$name, list);
      }
    }
  }

  /**
   * Adds a row that existed before capture was installed: it has no stamps, so every change
   * beats it.
   *
   * @example
   *   model.preexisting('lists', { id, name: 'Groceries', owner_id: 'u1' });
   */
  preexisting(table: string, values: JsonRow): void {
    const row = this.row(table, this.pkOf(table, values));
    row.exists = true;
    for (const [name, value] of Object.entries(values)) {
      row.columns[name] = { value, hlc: undefined, source: 'before capture' };
    }
  }

  /**
   * Applies one change by the rules of docs/sync-internals.md, as the server applies a pushed
   * change (a direct write is applied the same way: its stamp, from the database's clock, is the
   * newest). Changes of one batch go in their batch order.
   *
   * @example
   *   model.apply({ table: 'items', op: 'delete', pk: { id }, hlc, source: 'direct' });
   */
  apply(change: ModelChange): void {
    const row = this.row(change.table, change.pk);
    row.history.push(change);
    const { hlc } = change;
    const values = this.valuesOf(change);
    const source = change.source;
    if (change.asMade) {
      this.applyAsMade(row, change, values);
      return;
    }
    if (change.op === 'insert') {
      if (row.exists) {
        // An insert of a row that exists is a per-column update, and it moves `created`.
        row.created = latest(row.created, hlc);
        this.setColumns(row, values, hlc, source);
        return;
      }
      if (row.deleted !== undefined && row.deleted > hlc) return; // a newer tombstone
      // Re-created: the insert's values, except the image's columns stamped newer (updates made
      // after the insert, which win whichever arrived first).
      const columns: Record<string, ModelColumn> = {};
      for (const [name, value] of Object.entries({ ...values, ...change.pk }))
        columns[name] = { value, hlc, source };
      for (const [name, kept] of Object.entries(row.columns)) {
        if (kept.hlc !== undefined && kept.hlc > hlc && !Object.hasOwn(change.pk, name)) columns[name] = kept;
      }
      row.columns = columns;
      row.exists = true;
      row.created = hlc;
      row.deleted = undefined;
      this.checkParents(row, change);
    } else if (change.op === 'update') {
      if (row.exists) {
        this.setColumns(row, values, hlc, source);
        this.checkParents(row, change, Object.keys(values));
        return;
      }
      // Never revives the row. Only an update newer than the tombstone can ever show (in a
      // re-created row): those columns it wins go into the image. An update of a row that never
      // existed is dropped, as the server does (docs/sync-internals.md, "Known limits": there is
      // no row for the write rules to judge it by, and keeping it would let one user plant values
      // into a row another inserts later). Changes come in the server's order, so the model
      // drops exactly the updates the server dropped.
      if (row.deleted === undefined || hlc <= row.deleted) return;
      this.setColumns(row, values, hlc, source);
    } else if (row.exists) {
      if (row.created !== undefined && row.created > hlc) return; // re-created by a newer insert
      this.remove(row, hlc);
    } else if (row.deleted !== undefined) {
      row.deleted = latest(row.deleted, hlc);
    }
    // A delete of a row that never existed is dropped, as the server drops it (no tombstone: it
    // would let whoever pushed it swallow another user's later insert of the key).
  }

  /**
   * The rows that exist, sorted by key.
   *
   * @example
   *   const titles = model.rows('items').map((r) => r.values.title);
   */
  rows(table: string): ModelRow[] {
    const rows = [...this.tableData(table).entries()]
      .filter(([, row]) => row.exists)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return rows.map(([, row]) => ({
      pk: row.pk,
      values: Object.fromEntries(Object.entries(row.columns).map(([name, c]) => [name, c.value])),
      stamps: Object.fromEntries(Object.entries(row.columns).map(([name, c]) => [name, c.hlc])),
    }));
  }

  /**
   * Everything the model holds about one row (deleted or not), or undefined when no change named it.
   *
   * @example
   *   const state = model.state('items', { id });
   */
  state(table: string, pk: JsonRow): ModelRowState | undefined {
    const row = this.tableData(table).get(this.keyString(table, pk));
    return row && { ...row, columns: { ...row.columns }, history: [...row.history] };
  }

  /**
   * The key string the model and `compareRows` use for a row of `table`: the encoded key values
   * in primary-key order, as JSON.
   *
   * @example
   *   model.keyString('items', { id }); // '["0000…"]'
   */
  keyString(table: string, pk: JsonRow): string {
    const t = this.table(table);
    return JSON.stringify(t.$primaryKeyColumns.map((c) => pk[c.name] ?? null));
  }

  /** The synced tables the model was made for. */
  get tableList(): AnyTable[] {
    return [...this.tables.values()];
  }

  private table(name: string): AnyTable {
    const table = this.tables.get(name);
    if (!table)
      throw new Error(`SyncModel: no table "${name}" (tables: ${[...this.tables.keys()].join(', ')})`);
    return table;
  }

  private tableData(name: string): Map<string, MutableRow> {
    this.table(name);
    return this.data.get(name)!;
  }

  /**
   * The key columns of a row of `table` (SQL name → encoded value), from a row or a key.
   *
   * @example
   *   model.pkOf('items', row); // { id: '0000…' }
   */
  pkOf(table: string, values: JsonRow): JsonRow {
    return Object.fromEntries(
      this.table(table).$primaryKeyColumns.map((c) => [c.name, values[c.name] ?? null]),
    );
  }

  private row(table: string, pk: JsonRow): MutableRow {
    const rows = this.tableData(table);
    const key = this.keyString(table, pk);
    let row = rows.get(key);
    if (!row) {
      row = {
        table,
        pk: this.pkOf(table, pk),
        exists: false,
        columns: {},
        created: undefined,
        deleted: undefined,
        history: [],
      };
      rows.set(key, row);
    }
    return row;
  }

  /** The change's values without its key columns (a change never alters a key). */
  private valuesOf(change: ModelChange): JsonRow {
    const keys = new Set(this.table(change.table).$primaryKeyColumns.map((c) => c.name));
    return Object.fromEntries(Object.entries(change.values ?? {}).filter(([name]) => !keys.has(name)));
  }

  /**
   * A change made whatever the stamps (`ModelChange.asMade`), as the capture trigger stamps a
   * mutator's writes: an insert writes the whole row and its creation, an update the columns it
   * changed, a delete removes the row (only changes that changed something are logged).
   */
  private applyAsMade(row: MutableRow, change: ModelChange, values: JsonRow): void {
    const { hlc, source } = change;
    if (change.op === 'delete') {
      if (row.exists) this.remove(row, hlc);
      else row.deleted = latest(row.deleted, hlc);
      return;
    }
    if (change.op === 'insert') {
      if (!row.exists) row.columns = {};
      row.exists = true;
      row.created = hlc;
      row.deleted = undefined;
    }
    const written = change.op === 'insert' ? { ...values, ...change.pk } : values;
    for (const [name, value] of Object.entries(written)) row.columns[name] = { value, hlc, source };
    this.checkParents(row, change, change.op === 'update' ? Object.keys(values) : undefined);
  }

  private setColumns(row: MutableRow, values: JsonRow, hlc: string, source: string | undefined): void {
    for (const [name, value] of Object.entries(values)) {
      if (beats(hlc, row.columns[name]?.hlc)) row.columns[name] = { value, hlc, source };
    }
  }

  /** Deletes an existing row (its values stay as the image), then its children with ON DELETE CASCADE. */
  private remove(row: MutableRow, hlc: string): void {
    row.exists = false;
    row.deleted = latest(row.deleted, hlc);
    for (const cascade of this.cascades.get(row.table) ?? []) {
      for (const child of this.tableData(cascade.child.$name).values()) {
        if (!child.exists) continue;
        const references = cascade.columns.every(
          ([childColumn, parentColumn]) =>
            canonicalJson(child.columns[childColumn]?.value) ===
            canonicalJson(row.columns[parentColumn]?.value),
        );
        if (!references) continue;
        // The database removes the child whatever its stamps: a cascaded delete with the parent's stamp.
        child.history.push({
          table: child.table,
          op: 'delete',
          pk: child.pk,
          hlc,
          source: `cascade of ${row.table}`,
        });
        this.remove(child, hlc);
      }
    }
  }

  /** Notes an anomaly when the row (just written: `only` its columns of an update) points at a missing parent. */
  private checkParents(row: MutableRow, change: ModelChange, only?: readonly string[]): void {
    for (const { parent, columns } of this.parents.get(row.table) ?? []) {
      if (only && !columns.some(([childColumn]) => only.includes(childColumn))) continue;
      const wanted = columns.map(([childColumn]) => row.columns[childColumn]?.value ?? null);
      if (wanted.some((v) => v === null)) continue;
      const found = [...this.tableData(parent).values()].some(
        (p) =>
          p.exists &&
          columns.every(
            ([childColumn, parentColumn]) =>
              canonicalJson(p.columns[parentColumn]?.value) ===
              canonicalJson(row.columns[childColumn]?.value),
          ),
      );
      if (!found) {
        this.anomalies.push(
          `${change.source ?? 'a change'} ${change.op} of ${row.table} ${this.keyString(row.table, row.pk)} at ${change.hlc} left it pointing at a missing ${parent} row (${canonicalJson(wanted)}): the server must have refused it`,
        );
      }
    }
  }
}

/**
 * Every row of `tables` on `db` (the server), encoded as sync messages encode them (SQL column
 * names), by table name.
 *
 * @example
 *   const actual = await readEncodedRows(t.server.db, model.tableList);
 */
export async function readEncodedRows(
  db: Database<Schema>,
  tables: readonly AnyTable[],
): Promise<Record<string, JsonRow[]>> {
  const out: Record<string, JsonRow[]> = {};
  for (const table of tables) {
    const rows = (await db.select().from(table)) as Record<string, unknown>[];
    out[table.$name] = rows.map((row) =>
      encodeRow(table, Object.fromEntries(table.$columnList.map((c) => [c.name, row[c.key]]))),
    );
  }
  return out;
}

/**
 * The differences between the model and `actual` (rows by table name, encoded, as
 * `readEncodedRows` gives them): rows one side lacks, and per column of rows both have, values
 * that differ (jsonb key order aside). Columns the model has no value for are not compared.
 *
 * @example
 *   const diffs = compareRows(model, await readEncodedRows(t.server.db, model.tableList));
 */
export function compareRows(model: SyncModel, actual: Record<string, readonly JsonRow[]>): ModelDifference[] {
  const out: ModelDifference[] = [];
  for (const table of model.tableList) {
    const name = table.$name;
    const have = new Map<string, JsonRow>();
    for (const row of actual[name] ?? []) have.set(model.keyString(name, row), row);
    const want = new Map(model.rows(name).map((row) => [model.keyString(name, row.pk), row]));
    for (const [key, row] of want) {
      const server = have.get(key);
      const state = model.state(name, row.pk)!;
      if (!server) {
        const last = state.history.at(-1);
        out.push({
          table: name,
          key,
          pk: row.pk,
          expected: row.values,
          expectedStamp: state.created,
          expectedSource: last?.source,
          actual: 'missing',
        });
        continue;
      }
      for (const [column, value] of Object.entries(row.values)) {
        if (canonicalJson(value) === canonicalJson(server[column])) continue;
        const decided = state.columns[column];
        out.push({
          table: name,
          key,
          pk: row.pk,
          column,
          expected: value,
          expectedStamp: decided?.hlc,
          expectedSource: decided?.source,
          actual: server[column] ?? null,
        });
      }
    }
    for (const [key, row] of have) {
      if (want.has(key)) continue;
      const pk = model.pkOf(name, row);
      const state = model.state(name, pk);
      out.push({
        table: name,
        key,
        pk,
        expected: 'missing',
        expectedStamp: state?.deleted,
        expectedSource: state?.history.at(-1)?.source,
        actual: row,
      });
    }
  }
  return out;
}

/**
 * Reads the server's rows of every table of the model and compares them (`compareRows`).
 *
 * @example
 *   const diffs = await compareWithServer(model, t.server.db);
 *   expect(formatDifferences(diffs, model)).toBe('');
 */
export async function compareWithServer(model: SyncModel, db: Database<Schema>): Promise<ModelDifference[]> {
  return compareRows(model, await readEncodedRows(db, model.tableList));
}

/**
 * The differences as lines for a failure message (empty when there are none); with the model,
 * each differing row's history follows (every change the model applied to it, in order).
 *
 * @example
 *   expect(formatDifferences(diffs, model), 'the server differs from the model').toBe('');
 */
export function formatDifferences(diffs: readonly ModelDifference[], model?: SyncModel): string {
  const lines: string[] = [];
  const explained = new Set<string>();
  for (const d of diffs) {
    const where = `${d.table} ${d.key}${d.column === undefined ? '' : `.${d.column}`}`;
    const decided =
      d.expectedStamp === undefined ? '' : ` (stamp ${d.expectedStamp}, ${d.expectedSource ?? '?'})`;
    lines.push(
      `${where}: expected ${JSON.stringify(d.expected)}${decided}, server has ${JSON.stringify(d.actual)}`,
    );
    const rowKey = `${d.table} ${d.key}`;
    if (!model || explained.has(rowKey)) continue;
    explained.add(rowKey);
    const state = model.state(d.table, d.pk);
    for (const c of state?.history ?? []) {
      lines.push(`    ${c.hlc} ${c.source ?? '?'} ${c.op}${c.values ? ` ${canonicalJson(c.values)}` : ''}`);
    }
  }
  return lines.join('\n');
}
