import type { QueryScope } from '../../database/query-scope.js';
import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import type { AnyColumn } from '../../schema/column.js';
import type { AnyTable } from '../../schema/table.js';
import { CHANGES_CHANNEL, UNCHANGED_LOGGED_BYTES } from './capture.js';

/**
 * Who made the writes of a decoded transaction that follow it: a push names its stamp, client,
 * batch, the table its current statement updates and the mutator it runs, in a logical message
 * (`pg_logical_emit_message`, see logical-writer.ts) as the trigger mode's settings do. Without one
 * the write is a direct one, stamped from PostgreSQL's clock when it is logged.
 *
 * @example
 *   const writer: LogicalWriter = { hlc: '1700000000000-00000-c1', origin: 'c1', mutation: 4, updating: 'todos', mutator: false };
 */
export interface LogicalWriter {
  readonly hlc: string;
  readonly origin: string | undefined;
  readonly mutation: number | undefined;
  readonly updating: string;
  readonly mutator: boolean;
  /**
   * When one statement writes rows of several batches (`syncline.writers`), each row's own stamp
   * and batch, by `rowKey(table, pk)`.
   */
  readonly rows?: ReadonlyMap<string, { readonly hlc: string; readonly mutation: number }>;
}

/** A row's identity across JSON spellings of its key (key order does not matter). */
export function rowKey(table: string, pk: Record<string, unknown>): string {
  return `${table}\u0000${JSON.stringify(pk, Object.keys(pk).sort())}`;
}

/**
 * One row change of a decoded transaction, in WAL order: the new and old values by column name
 * (REPLICA IDENTITY FULL gives every old value) as PostgreSQL's text forms, JSON values for json
 * columns; `writer` undefined for a direct write.
 *
 * @example
 *   const change: DecodedChange = { table: 'todos', op: 'I', values: { id: '1', title: 'Milk' }, old: undefined, writer: undefined };
 */
export interface DecodedChange {
  readonly table: string;
  readonly op: 'I' | 'U' | 'D';
  readonly values: Record<string, unknown> | undefined;
  readonly old: Record<string, unknown> | undefined;
  readonly writer: LogicalWriter | undefined;
}

type Json = Record<string, unknown>;

/** bigint and numeric (also under a custom type): logged as strings, as the triggers log them. */
const EXACT_DECIMAL = /^\s*(bigint|int8|numeric|decimal)\b/i;
/** json and jsonb columns: their values travel as JSON, not as text for the type's input. */
const JSON_TYPE = /^\s*jsonb?\b/i;

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * Turns decoded transactions into what the trigger mode writes: rows of `_syncline_changes` and
 * the stamps of `_syncline_stamps`, the same per change (docs/sync-internals.md, "Stamps and
 * conflicts"), written in set-based statements by the logical consumer. One instance per server,
 * built from the app schema.
 *
 * @example
 *   const writer = new LogicalLogWriter(db, schema.tableList, 'app');
 *   await writer.write(run, changes);
 */
export class LogicalLogWriter {
  private readonly tables = new Map<string, AnyTable>();
  private readonly convertSql: string;

  constructor(db: QueryScope, tables: readonly AnyTable[], namespace: string) {
    const branches: string[] = [];
    for (const table of tables) {
      if (table.$local) continue;
      this.tables.set(table.$name, table);
      const decimals = table.$columnList.filter((c) =>
        EXACT_DECIMAL.test(db.dialect.physicalType(c.type).sqlType),
      );
      const image = (row: string) =>
        decimals.length === 0
          ? `to_jsonb(${row}.*)`
          : `to_jsonb(${row}.*) || jsonb_build_object(${decimals
              .map((c) => `${literal(c.name)}, ${row}.${quoteIdentifier(c.name)}::text`)
              .join(', ')})`;
      const type = `NULL::${quoteIdentifier(namespace)}.${quoteIdentifier(table.$name)}`;
      branches.push(`SELECT e.i, CASE WHEN e.v ? 'n' THEN ${image('r')} END, CASE WHEN e.v ? 'o' THEN ${image('o')} END
         FROM e, jsonb_populate_record(${type}, coalesce(e.v->'n', '{}')) r,
              jsonb_populate_record(${type}, coalesce(e.v->'o', '{}')) o
        WHERE e.v->>'t' = ${literal(table.$name)}`);
    }
    // The values become the table's row type (each text through its type's input), and the row
    // becomes the log's JSON as the triggers build it: one statement for every table of a flush.
    this.convertSql = `WITH e AS (SELECT x.v, x.i FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(v, i))
      SELECT NULL::bigint AS i, NULL::text AS img, NULL::text AS old, _syncline_db_stamp() AS stamp
      ${branches.map((b) => `UNION ALL SELECT i, img::text, old::text, NULL FROM (${b}) AS b(i, img, old)`).join('\n')}`;
  }

  /** The app table a decoded change names (undefined for a table the app schema lacks). */
  table(name: string): AnyTable | undefined {
    return this.tables.get(name);
  }

  /** True for a column whose values travel as JSON (json, jsonb), not as text. */
  static isJsonColumn(db: QueryScope, column: AnyColumn): boolean {
    return JSON_TYPE.test(db.dialect.physicalType(column.type).sqlType);
  }

  /**
   * Logs `changes` (of one or more upstream transactions, in commit order) and stamps their rows,
   * in the transaction `run` is in; then sets the applied position to `appliedLsn` and notifies
   * the change hubs. Two round trips, whatever the number of changes.
   */
  async write(
    run: (text: string, params: unknown[]) => Promise<Json[]>,
    changes: readonly DecodedChange[],
    appliedLsn: bigint,
    slot: string,
  ): Promise<void> {
    const known = changes.filter((c) => this.tables.has(c.table));
    const converted = await run(this.convertSql, [
      JSON.stringify(
        known.map((c) => ({
          t: c.table,
          ...(c.values ? { n: c.values } : {}),
          ...(c.old ? { o: c.old } : {}),
        })),
      ),
    ]);
    let dbStamp = '';
    const images: (readonly [Json | undefined, Json | undefined])[] = [];
    for (const row of converted) {
      if (row.i === null) {
        dbStamp = row.stamp as string;
        continue;
      }
      images[Number(row.i) - 1] = [
        row.img == null ? undefined : JSON.parse(row.img as string),
        row.old == null ? undefined : JSON.parse(row.old as string),
      ];
    }
    const logged: Json[] = [];
    const stamps = new StampFolds();
    known.forEach((change, index) => {
      const table = this.tables.get(change.table)!;
      const [image, oldImage] = images[index] ?? [undefined, undefined];
      const writer = change.writer;
      const direct = writer === undefined || writer.mutator;
      const keyOf = (row: Json) =>
        Object.fromEntries(table.$primaryKeyColumns.map((c) => [c.name, row[c.name]]));
      const own = writer?.rows?.get(rowKey(table.$name, keyOf((image ?? oldImage)!)));
      const stamp = own?.hlc ?? writer?.hlc ?? dbStamp;
      const who = { h: stamp, o: writer?.origin ?? null, m: own?.mutation ?? writer?.mutation ?? null };
      if (change.op === 'I' && image) {
        logged.push({ t: table.$name, op: 'I', pk: keyOf(image), r: image, ...who });
        if (direct) stamps.whole(table, keyOf(image), stamp);
      } else if (change.op === 'D' && oldImage) {
        logged.push({ t: table.$name, op: 'D', pk: keyOf(oldImage), r: oldImage, ...who });
        stamps.tombstone(table, keyOf(oldImage), stamp, oldImage, direct ? undefined : stamp);
      } else if (change.op === 'U' && image && oldImage) {
        this.update(table, image, oldImage, who, direct || writer?.updating !== table.$name, logged, stamps);
      }
    });
    const folded = stamps.rows();
    const [result] = await run(
      `WITH logged AS (
         INSERT INTO _syncline_changes (table_name, op, pk, old_pk, "row", old_values, hlc, origin, mutation_id)
         SELECT x.t, x.op, x.pk, x.opk, x.r, x.ov, x.h, x.o, x.m
           FROM jsonb_to_recordset($1::jsonb) AS x(n int, t text, op text, pk jsonb, opk jsonb, r jsonb, ov jsonb, h text, o text, m bigint)
          ORDER BY x.n),
       x AS (SELECT * FROM jsonb_to_recordset($2::jsonb)
               AS x(t text, pk jsonb, c jsonb, cr text, d text, img jsonb, w boolean, tomb boolean, g text)),
       -- A push's own delete of a row it re-created (its stamps, written by the push, say so) is
       -- already settled: the tombstone the triggers write before the push's stamps is not wanted after.
       updated AS (
         UPDATE _syncline_stamps AS s SET
           cols = CASE WHEN x.w THEN x.c ELSE s.cols || x.c END,
           created = CASE WHEN x.w THEN x.cr ELSE s.created END,
           deleted = CASE WHEN x.w THEN x.d WHEN x.tomb AND NOT ${GUARDED} THEN
             CASE WHEN s.deleted COLLATE "C" > x.d THEN s.deleted ELSE x.d END ELSE s.deleted END,
           image = CASE WHEN x.w OR (x.tomb AND NOT ${GUARDED}) THEN x.img ELSE s.image END
          FROM x WHERE s.table_name = x.t AND s.pk = x.pk
         RETURNING s.table_name, s.pk),
       added AS (
         INSERT INTO _syncline_stamps (table_name, pk, cols, created, deleted, image)
         SELECT x.t, x.pk, x.c, x.cr, x.d, x.img FROM x
          WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE u.table_name = x.t AND u.pk = x.pk)
         ON CONFLICT (table_name, pk) DO NOTHING RETURNING 1),
       progress AS (UPDATE _syncline_logical_state SET applied_lsn = $3::pg_lsn, updated_at = now() WHERE slot = $4)
       SELECT (SELECT count(*) FROM updated)::int + (SELECT count(*) FROM added)::int AS stamped,
              CASE WHEN $5 THEN pg_notify('${CHANGES_CHANNEL}', '') END AS notified`,
      [
        JSON.stringify(logged.map((row, n) => ({ n, ...row }))),
        JSON.stringify(folded),
        lsnText(appliedLsn),
        slot,
        logged.length > 0,
      ],
    );
    if ((result?.stamped as number) !== folded.length) {
      // A push created one of these stamps rows meanwhile: the flush is applied again from the slot.
      throw new Error(
        'a push stamped a row the logical consumer was stamping; the changes are applied again',
      );
    }
  }

  /**
   * An update as the update trigger logs it: nothing when no value changed; else the new row
   * (without unchanged values over UNCHANGED_LOGGED_BYTES unless the key changed), the old values
   * of the changed columns, the old key when it changed; and, where the writer does not stamp the
   * row itself, the changed columns stamped (a new key: the old one's tombstone, the new one whole).
   */
  private update(
    table: AnyTable,
    image: Json,
    oldImage: Json,
    who: { h: string; o: string | null; m: number | null },
    stampsHere: boolean,
    logged: Json[],
    stamps: StampFolds,
  ): void {
    const changed: Json = {};
    const omitted: string[] = [];
    const keyNames = new Set(table.$primaryKeyColumns.map((c) => c.name));
    for (const name of Object.keys(image)) {
      const before = JSON.stringify(oldImage[name] ?? null);
      const after = JSON.stringify(image[name] ?? null);
      if (before !== after) changed[name] = oldImage[name] ?? null;
      else if (!keyNames.has(name) && after.length > UNCHANGED_LOGGED_BYTES) omitted.push(name);
    }
    if (Object.keys(changed).length === 0) return;
    const keyOf = (row: Json) =>
      Object.fromEntries(table.$primaryKeyColumns.map((c) => [c.name, row[c.name]]));
    const keyChanged = [...keyNames].some((name) => name in changed);
    const row = keyChanged
      ? image
      : Object.fromEntries(Object.entries(image).filter(([k]) => !omitted.includes(k)));
    logged.push({
      t: table.$name,
      op: 'U',
      pk: keyOf(image),
      opk: keyChanged ? keyOf(oldImage) : null,
      r: row,
      ov: changed,
      ...who,
    });
    if (!stampsHere) return;
    if (keyChanged) {
      stamps.tombstone(table, keyOf(oldImage), who.h, oldImage, undefined);
      stamps.whole(table, keyOf(image), who.h);
    } else {
      stamps.columns(table, keyOf(image), Object.fromEntries(Object.keys(changed).map((c) => [c, who.h])));
    }
  }
}

/** A push's delete whose row the same push created again (it stamped that itself). */
const GUARDED = '(x.g IS NOT NULL AND s.deleted IS NULL AND s.created = x.g)';

/** A position in the WAL as PostgreSQL writes it (`16/B374D848`). */
export function lsnText(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** A position in the WAL from PostgreSQL's text form. */
export function parseLsn(text: string): bigint {
  const [high, low] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

/**
 * The stamp writes of a flush, folded per row so that one upsert writes each row once (PostgreSQL
 * cannot update a row twice in one statement) with the effect of the writes one after the other:
 * a row written whole (a direct insert, the new key of a key change) replaces what is stored; the
 * stamps of changed columns merge in; a tombstone keeps the later stamp and the newest image.
 */
class StampFolds {
  private readonly folds = new Map<
    string,
    {
      t: string;
      pk: Json;
      whole: boolean;
      cols: Json;
      created: string | null;
      deleted: string | null;
      image: Json | null;
      tomb: boolean;
      /** A push's own delete: left alone when the push re-created the row (stamped by the push itself). */
      guard: string | null;
    }
  >();

  private fold(table: AnyTable, pk: Json) {
    const key = rowKey(table.$name, pk);
    let fold = this.folds.get(key);
    if (!fold) {
      fold = {
        t: table.$name,
        pk,
        whole: false,
        cols: {},
        created: null,
        deleted: null,
        image: null,
        tomb: false,
        guard: null,
      };
      this.folds.set(key, fold);
    }
    return fold;
  }

  whole(table: AnyTable, pk: Json, stamp: string): void {
    const fold = this.fold(table, pk);
    fold.whole = true;
    fold.cols = Object.fromEntries(table.$columnList.map((c) => [c.name, stamp]));
    fold.created = stamp;
    fold.deleted = null;
    fold.image = null;
    fold.tomb = false;
    fold.guard = null;
  }

  columns(table: AnyTable, pk: Json, cols: Json): void {
    const fold = this.fold(table, pk);
    Object.assign(fold.cols, cols);
    fold.guard = null;
  }

  tombstone(table: AnyTable, pk: Json, stamp: string, image: Json, guard: string | undefined): void {
    const fold = this.fold(table, pk);
    const fresh = !fold.whole && !fold.tomb && Object.keys(fold.cols).length === 0;
    fold.deleted = fold.deleted !== null && fold.deleted > stamp ? fold.deleted : stamp;
    fold.image = image;
    if (!fold.whole) fold.tomb = true;
    fold.guard = guard !== undefined && (fresh || fold.guard !== null) ? guard : null;
  }

  rows(): Json[] {
    return [...this.folds.values()].map((f) => ({
      t: f.t,
      pk: f.pk,
      c: f.cols,
      cr: f.created,
      d: f.deleted,
      img: f.image,
      w: f.whole,
      tomb: f.tomb,
      g: f.guard,
    }));
  }
}
