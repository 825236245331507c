import type { Database } from '../../database/database.js';
import type { QueryScope } from '../../database/query-scope.js';
import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { UsageError } from '../../errors.js';
import { compileRowPredicate } from '../../live/row-predicate.js';
import type { AnyColumn } from '../../schema/column.js';
import type { AnyTable } from '../../schema/table.js';
import { or } from '../../sql/expressions.js';
import { type SQL, sql } from '../../sql/sql.js';
import type { ChangeJson } from '../protocol/messages.js';
import { loggedColumnsSql } from './capture.js';
import type { CapturedChange } from './change-log-reader.js';
import { decodeLogRow, logRowToJson } from './log-values.js';
import { referencedColumns } from './referenced-columns.js';

type Logged = Record<string, unknown>;

/** Whether a change's old (`prev`) and new (`next`) image are in a shape. */
interface Verdict {
  prev: boolean;
  next: boolean;
}

/**
 * One table's test for a connection: every row (`all`), a TypeScript test on decoded values, or a
 * condition to run in SQL (subqueries in read rules, LIKE, text ordering: what TypeScript cannot
 * mirror exactly).
 */
type TableTest =
  | { readonly kind: 'all' }
  | {
      readonly kind: 'ts';
      readonly matches: (row: Readonly<Record<string, unknown>>) => boolean | null;
      readonly reads: ReadonlySet<string> | 'all';
    }
  | { readonly kind: 'sql'; readonly where: SQL<unknown>; readonly reads: ReadonlySet<string> | 'all' };

/**
 * One shape as the filter sees it: a table and its whole predicate (the shape's filter AND the
 * read rule; undefined for every row).
 *
 * @example
 *   new ShapeFilter(db, [{ table: todos, where: and(eq(todos.listId, id), readRule) }]);
 */
export interface FilteredShape {
  readonly table: AnyTable;
  readonly where: SQL<boolean> | undefined;
}

function pick(row: Logged, keys: readonly string[]): Logged {
  const out: Logged = {};
  for (const key of keys) if (Object.hasOwn(row, key)) out[key] = row[key];
  return out;
}

/**
 * What one change looks like on the wire, worked out once and shared by every connection: its
 * messages and decoded images depend only on the change and its table, not on who receives it,
 * so a hundred connections do not decode and re-encode the same row a hundred times. Entries go
 * with their change once the hub's window lets go of it.
 */
interface Prepared {
  readonly table: AnyTable;
  insert?: ChangeJson;
  update?: ChangeJson | null;
  delete?: ChangeJson;
  images?: { next: Logged | undefined; prev: Logged | undefined };
  decoded?: { next?: Logged; prev?: Logged };
  /** The columns an update's logged row left out (unchanged and big: UNCHANGED_LOGGED_BYTES). */
  omitted?: readonly string[];
}

const prepared = new WeakMap<CapturedChange, Prepared>();

function preparedFor(table: AnyTable, change: CapturedChange): Prepared {
  const found = prepared.get(change);
  if (found && found.table === table) return found;
  const entry: Prepared = { table };
  prepared.set(change, entry);
  return entry;
}

/** A row change's images: the new one (absent for a delete) and the old one (absent for an insert). */
function imagesOf(
  entry: Prepared,
  change: CapturedChange,
): { next: Logged | undefined; prev: Logged | undefined } {
  if (entry.images) return entry.images;
  if (change.op === 'insert') entry.images = { next: change.row, prev: undefined };
  else if (change.op === 'delete') entry.images = { next: undefined, prev: change.row };
  else entry.images = { next: change.row, prev: { ...change.row, ...(change.oldValues ?? {}) } };
  return entry.images;
}

/** The columns of `table` an update's logged row lacks (none for other changes). */
function omittedOf(entry: Prepared, change: CapturedChange): readonly string[] {
  if (entry.omitted) return entry.omitted;
  const columns = entry.table.$columnList;
  if (change.op !== 'update' || change.oldPk) entry.omitted = [];
  else {
    let count = 0;
    for (const key in change.row) if (Object.hasOwn(change.row, key)) count++;
    entry.omitted =
      count >= columns.length
        ? []
        : columns.map((c) => c.name).filter((name) => !Object.hasOwn(change.row, name));
  }
  return entry.omitted;
}

/**
 * A change whose images lack columns its table's test reads: `missing` are read from the table
 * before it is judged (a row gone since is judged without them: see `judgeIncomplete`).
 */
interface Incomplete {
  readonly index: number;
  readonly change: CapturedChange;
  readonly missing: readonly string[];
}

/** An image as app values, for predicates run in TypeScript. */
function decodedImage(entry: Prepared, side: 'prev' | 'next', image: Logged): Logged {
  entry.decoded ??= {};
  entry.decoded[side] ??= decodeLogRow(entry.table, image);
  return entry.decoded[side]!;
}

/**
 * Turns the change stream into what one connection may see (docs/sync-internals.md, "Server flow"
 * step 5). Per table the predicate is the OR of the connection's shapes on it; each change's new
 * and old images are tested: in→in is an update with the changed columns (a delete of the old
 * key and an insert when the key changed), out→in an insert of the whole row, in→out a delete,
 * out→out nothing. Predicates `compileRowPredicate` handles run in TypeScript; others run in SQL on
 * the logged images, one query per table and batch, so subqueries in read rules work.
 *
 * @example
 *   const filter = new ShapeFilter(db, shapes);
 *   const changes = await filter.apply(batch.changes); // ChangeJson[] for a `changes` message
 */
export class ShapeFilter {
  private readonly tests = new Map<string, { table: AnyTable; test: TableTest }>();
  /**
   * True when every shape's filter is decided in TypeScript (no subquery for PostgreSQL to test):
   * `applyNow` can then filter without waiting.
   */
  readonly synchronous: boolean;

  constructor(
    private readonly db: Database,
    shapes: readonly FilteredShape[],
  ) {
    const byTable = new Map<string, { table: AnyTable; wheres: (SQL<boolean> | undefined)[] }>();
    for (const { table, where } of shapes) {
      const entry = byTable.get(table.$name) ?? { table, wheres: [] };
      entry.wheres.push(where);
      byTable.set(table.$name, entry);
    }
    for (const [name, { table, wheres }] of byTable) {
      this.tests.set(name, { table, test: testFor(table, wheres) });
    }
    this.synchronous = [...this.tests.values()].every(({ test }) => test.kind !== 'sql');
  }

  /** The tables this connection sees. */
  get tables(): ReadonlySet<string> {
    return new Set(this.tests.keys());
  }

  /**
   * The messages' changes for these captured changes, in their order. PostgreSQL is asked through
   * `db` (a transaction, to see what it sees) or the filter's own database.
   */
  async apply(changes: readonly CapturedChange[], db: QueryScope = this.db): Promise<ChangeJson[]> {
    const relevant = changes.filter((c) => this.tests.has(c.table));
    if (relevant.length === 0) return [];
    const { verdicts, inSql, incomplete } = this.judgeInTs(relevant);
    if (incomplete.length > 0) await this.judgeIncomplete(db, incomplete, verdicts, inSql);
    for (const { name, images, slots, notFalse } of inSql.values()) {
      const { table, test } = this.tests.get(name)!;
      const matching = await this.matchInSql(
        db,
        table,
        (test as { where: SQL<unknown> }).where,
        images,
        notFalse,
      );
      slots.forEach(([i, side], k) => {
        verdicts[i]![side] = matching.has(k + 1);
      });
    }
    return this.messages(relevant, verdicts);
  }

  /**
   * Whether `apply` must ask the database about these changes: a shape tested in SQL, or an update
   * whose logged row left out a big unchanged value a shape tests. `applyNow` takes the others.
   *
   * @example
   *   const out = filter.needsDatabase(changes) ? await filter.apply(changes) : filter.applyNow(changes);
   */
  needsDatabase(changes: readonly CapturedChange[]): boolean {
    if (!this.synchronous) return true;
    for (const change of changes) {
      const tested = this.tests.get(change.table);
      if (tested && this.missingOf(tested, change).length > 0) return true;
    }
    return false;
  }

  /**
   * `apply` without waiting, for changes `needsDatabase` says need no database.
   *
   * @example
   *   const changes = filter.needsDatabase(batch.changes) ? await filter.apply(batch.changes) : filter.applyNow(batch.changes);
   */
  applyNow(changes: readonly CapturedChange[]): ChangeJson[] {
    if (!this.synchronous)
      throw new UsageError('applyNow(): a shape of this filter is tested in SQL; use apply()');
    const relevant = changes.filter((c) => this.tests.has(c.table));
    if (relevant.length === 0) return [];
    const { verdicts, incomplete } = this.judgeInTs(relevant);
    if (incomplete.length > 0) {
      throw new UsageError(
        'applyNow(): a change lacks a column a shape tests (see needsDatabase()); use apply()',
      );
    }
    return this.messages(relevant, verdicts);
  }

  private messages(relevant: readonly CapturedChange[], verdicts: readonly Verdict[]): ChangeJson[] {
    const out: ChangeJson[] = [];
    relevant.forEach((change, i) => {
      const { table } = this.tests.get(change.table)!;
      emit(out, table, change, verdicts[i]!.prev, verdicts[i]!.next);
    });
    return out;
  }

  /** The columns a change's images lack that its table's test reads. */
  private missingOf(
    { table, test }: { table: AnyTable; test: TableTest },
    change: CapturedChange,
  ): readonly string[] {
    if (test.kind === 'all') return [];
    const omitted = omittedOf(preparedFor(table, change), change);
    if (omitted.length === 0 || test.reads === 'all') return omitted;
    const reads = test.reads;
    return omitted.filter((name) => reads.has(name));
  }

  /**
   * In or out, for the old and the new image of each change, as far as TypeScript decides it; the
   * images whose shape needs PostgreSQL's verdict come back in `inSql`, per table, with the slots
   * of `verdicts` they decide, and the changes that lack a column their test reads in `incomplete`.
   */
  private judgeInTs(changes: readonly CapturedChange[]): {
    verdicts: Verdict[];
    inSql: Map<string, SqlGroup>;
    incomplete: Incomplete[];
  } {
    const verdicts = changes.map(() => ({ prev: false, next: false }));
    const inSql = new Map<string, SqlGroup>();
    const incomplete: Incomplete[] = [];
    changes.forEach((change, i) => {
      const tested = this.tests.get(change.table)!;
      const { table, test } = tested;
      if (test.kind === 'all') {
        verdicts[i] = { prev: change.op !== 'insert', next: change.op !== 'delete' };
        return;
      }
      const missing = this.missingOf(tested, change);
      if (missing.length > 0) {
        incomplete.push({ index: i, change, missing });
        return;
      }
      const entry = preparedFor(table, change);
      const images = imagesOf(entry, change);
      for (const side of ['prev', 'next'] as const) {
        const image = images[side];
        if (!image) continue;
        if (test.kind === 'ts') verdicts[i]![side] = test.matches(decodedImage(entry, side, image)) === true;
        else sqlSlot(inSql, change.table, false, image, [i, side]);
      }
    });
    return { verdicts, inSql, incomplete };
  }

  /**
   * Judges the changes whose images lack columns their test reads, with those columns read from
   * the table now. Only an update leaves columns out, and only ones it did not change, so the old
   * and the new image share them. A later change may have set them since; it comes later in the
   * stream and is judged with its own images, so what a client ends up holding is right (a client
   * sent an update of a row it lacks fetches the row, through the read rules). A row deleted since
   * is judged without them: its old image is in unless the test is false whatever they are, its
   * new one out; the delete is coming anyway.
   */
  private async judgeIncomplete(
    db: QueryScope,
    incomplete: readonly Incomplete[],
    verdicts: Verdict[],
    inSql: Map<string, SqlGroup>,
  ): Promise<void> {
    const byTable = new Map<string, Incomplete[]>();
    for (const item of incomplete) {
      const list = byTable.get(item.change.table) ?? [];
      list.push(item);
      byTable.set(item.change.table, list);
    }
    for (const [name, list] of byTable) {
      const { table, test } = this.tests.get(name)!;
      const columns = [...new Set(list.flatMap((item) => item.missing))].map(
        (n) => table.$columnBySqlName(n)!,
      );
      const current = await this.currentValues(
        db,
        table,
        columns,
        list.map((item) => item.change.pk),
      );
      list.forEach(({ index, change }, k) => {
        const found = current.get(k + 1);
        const images = imagesOf(preparedFor(table, change), change);
        for (const side of ['prev', 'next'] as const) {
          const logged = images[side];
          if (!logged || (!found && side === 'next')) continue;
          const image = found ? { ...found, ...logged } : logged;
          const notFalse = !found;
          if (test.kind === 'ts') {
            const truth = test.matches(decodeLogRow(table, image));
            verdicts[index]![side] = notFalse ? truth !== false : truth === true;
          } else sqlSlot(inSql, name, notFalse, image, [index, side]);
        }
      });
    }
  }

  /** The `columns` of the rows with these keys as they are now, by 1-based position (gone rows absent). */
  private async currentValues(
    db: QueryScope,
    table: AnyTable,
    columns: readonly AnyColumn[],
    keys: readonly Logged[],
  ): Promise<Map<number, Logged>> {
    const name = sql.identifier(table.$name);
    const on = table.$primaryKeyColumns
      .map((c) => `_syncline_current.${quoteIdentifier(c.name)} = _syncline_key.${quoteIdentifier(c.name)}`)
      .join(' AND ');
    const rows = await db.execute<{ i: number; values: unknown }>(
      sql`SELECT _syncline_pk.ord::int AS i, ${sql.raw(loggedColumnsSql(db, columns, '_syncline_current'))}::text AS values
            FROM jsonb_array_elements(${JSON.stringify(keys)}::jsonb) WITH ORDINALITY AS _syncline_pk(value, ord)
           CROSS JOIN LATERAL jsonb_populate_record(NULL::${name}, _syncline_pk.value) AS _syncline_key
            JOIN ${name} AS _syncline_current ON ${sql.raw(on)}`,
    );
    const out = new Map<number, Logged>();
    for (const r of rows) {
      out.set(Number(r.i), (typeof r.values === 'string' ? JSON.parse(r.values) : r.values) as Logged);
    }
    return out;
  }

  /**
   * The 1-based positions of the images the condition holds for, tested by PostgreSQL itself (with
   * `notFalse`, those it is not false for: true or unknown).
   */
  private async matchInSql(
    db: QueryScope,
    table: AnyTable,
    where: SQL<unknown>,
    images: Logged[],
    notFalse: boolean,
  ): Promise<Set<number>> {
    const name = sql.identifier(table.$name);
    const condition = notFalse ? sql`(${where}) IS NOT FALSE` : where;
    const rows = await db.execute<{ i: number }>(
      sql`SELECT _syncline_image.ord::int AS i
            FROM jsonb_array_elements(${JSON.stringify(images)}::jsonb) WITH ORDINALITY AS _syncline_image(value, ord)
           CROSS JOIN LATERAL jsonb_populate_record(NULL::${name}, _syncline_image.value) AS ${name}
           WHERE ${condition}`,
    );
    return new Set(rows.map((r) => Number(r.i)));
  }
}

/** Images of one table to test in one SQL query, and the verdicts they decide. */
interface SqlGroup {
  readonly name: string;
  readonly notFalse: boolean;
  readonly images: Logged[];
  readonly slots: [number, 'prev' | 'next'][];
}

function sqlSlot(
  groups: Map<string, SqlGroup>,
  name: string,
  notFalse: boolean,
  image: Logged,
  slot: [number, 'prev' | 'next'],
): void {
  const key = `${notFalse ? '?' : '='}${name}`;
  let group = groups.get(key);
  if (!group) groups.set(key, (group = { name, notFalse, images: [], slots: [] }));
  group.images.push(image);
  group.slots.push(slot);
}

function testFor(table: AnyTable, wheres: readonly (SQL<boolean> | undefined)[]): TableTest {
  if (wheres.some((w) => w === undefined)) return { kind: 'all' };
  const where = wheres.length === 1 ? wheres[0]! : or(...(wheres as SQL<boolean>[]))!;
  const matches = compileRowPredicate(where.node, table);
  const reads = referencedColumns(where.node, table);
  return matches ? { kind: 'ts', matches, reads } : { kind: 'sql', where, reads };
}

/**
 * Appends the messages for one change given whether its old and new images are in. The message
 * objects are cached per change and shared between connections (and may appear in several
 * connections' arrays), so nothing downstream may change them.
 */
function emit(
  out: ChangeJson[],
  table: AnyTable,
  change: CapturedChange,
  prev: boolean,
  next: boolean,
): void {
  if (!prev && !next) return;
  const entry = preparedFor(table, change);
  if (prev && next) {
    if (change.oldPk) {
      out.push(deleteOf(entry, change), insertOf(entry, change));
      return;
    }
    if (entry.update === undefined) {
      const values = logRowToJson(
        table,
        pick(change.row, change.oldValues ? Object.keys(change.oldValues) : Object.keys(change.row)),
        [],
      );
      // Nothing left that a client can hold (see insertOf): no update to send.
      let any = false;
      for (const _ in values) any = true;
      entry.update = any
        ? { table: table.$name, hlc: change.hlc, op: 'update', pk: logRowToJson(table, change.pk), values }
        : null;
    }
    if (entry.update) out.push(entry.update);
  } else if (next) {
    out.push(insertOf(entry, change));
  } else {
    out.push(deleteOf(entry, change));
  }
}

function insertOf(entry: Prepared, change: CapturedChange): ChangeJson {
  const { table } = entry;
  entry.insert ??= {
    table: table.$name,
    hlc: change.hlc,
    op: 'insert',
    pk: logRowToJson(table, change.pk),
    // A value with no encoding (a real NaN, a timestamp at infinity) is left out rather than
    // failing the stream of every connection: the client fetches such a row and reports it.
    values: logRowToJson(table, change.row, []),
  };
  return entry.insert;
}

function deleteOf(entry: Prepared, change: CapturedChange): ChangeJson {
  const { table } = entry;
  entry.delete ??= {
    table: table.$name,
    hlc: change.hlc,
    op: 'delete',
    pk: logRowToJson(table, change.oldPk ?? change.pk),
  };
  return entry.delete;
}
