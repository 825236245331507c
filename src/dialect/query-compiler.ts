import { InvalidValueError, UsageError } from '../errors.js';
import type { Column } from '../schema/column.js';
import type { ColumnType } from '../schema/column-type.js';
import type {
  CompoundNode,
  DeleteNode,
  InsertNode,
  Node,
  OrderNode,
  PlainRowsNode,
  QueryNode,
  SelectField,
  SelectNode,
  UpdateNode,
} from '../sql/nodes.js';
import type { Dialect } from './dialect.js';
import { quoteIdentifier } from './quote-identifier.js';

/** A placeholder's position in the parameter list of a compiled query, and how to encode its value. */
export interface ParamSlot {
  readonly index: number;
  readonly name: string;
  readonly encode: (value: unknown) => unknown;
}

/** How one result column becomes a value of the result object. */
export interface CompiledField {
  readonly path: readonly string[];
  readonly decode: ((value: unknown) => unknown) | undefined;
  readonly group: string | undefined;
}

/** A query turned into text for one dialect: what `toSQL()` shows, plus what running it needs. */
export interface CompiledQuery {
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly slots: readonly ParamSlot[];
  readonly fields: readonly CompiledField[] | undefined;
  /** Tables the query reads (live queries re-run when one of these changes). */
  readonly tables: readonly string[];
  /** Tables the query writes. */
  readonly writes: string | undefined;
  /**
   * Worth keeping prepared on the server under a name derived from its text: a plain insert (no
   * RETURNING), whose text repeats by shape and whose parse is the costly part of a bulk write.
   */
  readonly keepPrepared: boolean;
  /** The driver must return exact 64-bit integers (a bigint column is read). */
  readonly needsBigInt: boolean;
}

class CompileState {
  sql = '';
  params: unknown[] = [];
  slots: ParamSlot[] = [];
  tables = new Set<string>();
  needsBigInt = false;
  /** Column references carry their table name (off in DDL, RETURNING and compound ORDER BY). */
  qualify = true;
  /** Values are written as literals (DDL cannot take parameters). */
  inline = false;
}

/**
 * Turns a SQL tree into text and parameters. One compiler walks every tree; a dialect subclasses
 * it and overrides only what it spells differently (parameters, ILIKE, LIMIT/OFFSET, literals).
 */
export abstract class QueryCompiler {
  private dialectRef: Dialect | undefined;

  /** Called once by the dialect that owns this compiler. */
  attach(dialect: Dialect): void {
    this.dialectRef = dialect;
  }

  protected get dialect(): Dialect {
    return this.dialectRef!;
  }

  /** The text of the n-th parameter (0-based): `?` or `$1`. */
  protected abstract parameter(index: number): string;

  /** A value as a SQL literal, for DDL. */
  abstract literal(value: unknown): string;

  private readonly quoted = new Map<string, string>();
  private readonly qualifiedColumns = new WeakMap<Column<any, any, any, any>, string>();
  private readonly selectLists = new WeakMap<readonly SelectField[], string>();

  /** A quoted identifier. Names repeat endlessly, so each is quoted once. */
  quote(name: string): string {
    let q = this.quoted.get(name);
    if (q === undefined) {
      q = quoteIdentifier(name);
      if (this.quoted.size < 10_000) this.quoted.set(name, q);
    }
    return q;
  }

  private qualifiedColumn(column: Column<any, any, any, any>): string {
    let q = this.qualifiedColumns.get(column);
    if (q === undefined) {
      q = `${this.quote(column.table.$alias)}.${this.quote(column.name)}`;
      this.qualifiedColumns.set(column, q);
    }
    return q;
  }

  compile(node: QueryNode): CompiledQuery {
    const state = new CompileState();
    let fields: readonly SelectField[] | undefined;
    let writes: string | undefined;
    switch (node.kind) {
      case 'select':
        this.select(state, node);
        fields = node.fields;
        break;
      case 'compound':
        this.compound(state, node);
        fields = node.first.fields;
        break;
      case 'insert':
        this.insert(state, node);
        fields = node.returning;
        writes = node.table.$name;
        break;
      case 'update':
        this.update(state, node);
        fields = node.returning;
        writes = node.table.$name;
        break;
      case 'delete':
        this.delete(state, node);
        fields = node.returning;
        writes = node.table.$name;
        break;
      case 'raw':
        this.visit(state, node);
        break;
    }
    const compiledFields = fields && this.compiledFields(state, fields);
    return {
      sql: state.sql,
      params: state.params,
      slots: state.slots,
      fields: compiledFields,
      tables: [...state.tables],
      writes,
      keepPrepared: node.kind === 'insert' && node.returning === undefined,
      needsBigInt: state.needsBigInt,
    };
  }

  /**
   * The most parameters a plain bulk insert binds in one statement; undefined keeps every insert
   * one statement whatever its size. See `compileInsertStatements`.
   */
  protected readonly bulkInsertParams: number | undefined = undefined;

  /**
   * A plain bulk insert (a PlainRowsNode) with more values than `bulkInsertParams`, compiled as
   * consecutive statements of at most that many parameters, each encoded before any runs; undefined
   * when it stays one statement. The caller runs them as one write (`runCompiledStatements`).
   */
  compileInsertStatements(node: InsertNode): CompiledQuery[] | undefined {
    const limit = this.bulkInsertParams;
    const rows = node.rows;
    if (limit === undefined || !('kind' in rows)) return undefined;
    const perStatement = Math.max(1, Math.floor(limit / Math.max(1, node.columns.length)));
    const all = rows.rows;
    if (all.length <= perStatement) return undefined;
    const statements: CompiledQuery[] = [];
    for (let at = 0; at < all.length; at += perStatement) {
      const part: PlainRowsNode = { kind: 'plainRows', rows: all.slice(at, at + perStatement) };
      statements.push(this.compile({ ...node, rows: part }));
    }
    return statements;
  }

  /** An expression compiled on its own, with values inlined: for DDL (defaults, checks, partial indexes). */
  compileInline(node: Node, qualify = false): string {
    const state = new CompileState();
    state.inline = true;
    state.qualify = qualify;
    this.visit(state, node);
    return state.sql;
  }

  private readonly fieldCache = new WeakMap<
    readonly SelectField[],
    { fields: CompiledField[]; bigInt: boolean }
  >();

  private compiledFields(state: CompileState, fields: readonly SelectField[]): CompiledField[] {
    let cached = this.fieldCache.get(fields);
    if (!cached) {
      const probe = new CompileState();
      cached = { fields: fields.map((f) => this.field(probe, f)), bigInt: probe.needsBigInt };
      this.fieldCache.set(fields, cached);
    }
    if (cached.bigInt) state.needsBigInt = true;
    return cached.fields;
  }

  private field(state: CompileState, field: SelectField): CompiledField {
    const decoder = field.decoder;
    let decode: ((value: unknown) => unknown) | undefined;
    if (typeof decoder === 'function') decode = decoder;
    else if (decoder) {
      const physical = this.dialect.physicalType(decoder);
      decode = physical.fromDriver;
      if (physical.needsBigInt) state.needsBigInt = true;
    }
    return { path: field.path, decode, group: field.nullableGroup };
  }

  protected encode(
    value: unknown,
    type: ColumnType | undefined,
    column: Column<any, any, any, any> | undefined,
  ): unknown {
    if (value === null || value === undefined) return null;
    if (!type) return this.dialect.encodeUntyped(value);
    try {
      return this.dialect.physicalType(type).toDriver(value);
    } catch (error) {
      if (error instanceof InvalidValueError && column) {
        throw new InvalidValueError(`${column.table.$name}.${column.name}: ${error.message}`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  protected visit(state: CompileState, node: Node): void {
    switch (node.kind) {
      case 'column':
        state.sql += state.qualify ? this.qualifiedColumn(node) : this.quote(node.name);
        return;
      case 'ref':
        state.sql +=
          node.table && state.qualify
            ? `${this.quote(node.table)}.${this.quote(node.name)}`
            : this.quote(node.name);
        return;
      case 'param': {
        const value = this.encode(node.value, node.type, node.column);
        if (state.inline) state.sql += this.literal(value);
        else {
          state.params.push(value);
          state.sql += this.parameter(state.params.length - 1);
        }
        return;
      }
      case 'placeholder': {
        if (state.inline)
          throw new UsageError(`sql.placeholder('${node.name}') cannot be used in a schema definition`);
        const { type, column } = node;
        state.slots.push({
          index: state.params.length,
          name: node.name,
          encode: (v) => this.encode(v, type, column),
        });
        state.params.push(undefined);
        state.sql += this.parameter(state.params.length - 1);
        return;
      }
      case 'raw':
        for (const chunk of node.chunks) {
          if (typeof chunk === 'string') state.sql += chunk;
          else this.visit(state, chunk);
        }
        return;
      case 'identifier':
        state.sql += node.names.map((n) => this.quote(n)).join('.');
        return;
      case 'binary':
        this.visit(state, node.left);
        state.sql += ` ${node.op} `;
        this.visit(state, node.right);
        return;
      case 'ilike':
        this.ilike(state, node.left, node.right, node.negated);
        return;
      case 'logical':
        state.sql += '(';
        node.items.forEach((item, i) => {
          if (i > 0) state.sql += ` ${node.op} `;
          this.visit(state, item);
        });
        state.sql += ')';
        return;
      case 'not':
        state.sql += 'NOT (';
        this.visit(state, node.item);
        state.sql += ')';
        return;
      case 'in':
        if (Array.isArray(node.right) && node.right.length === 0) {
          // Nothing is in an empty list; everything is outside it.
          state.sql += node.negated ? '1 = 1' : '1 = 0';
          return;
        }
        this.visit(state, node.left);
        state.sql += node.negated ? ' NOT IN ' : ' IN ';
        if (Array.isArray(node.right)) this.list(state, node.right);
        else this.visit(state, node.right as Node);
        return;
      case 'between':
        this.visit(state, node.expr);
        state.sql += node.negated ? ' NOT BETWEEN ' : ' BETWEEN ';
        this.visit(state, node.low);
        state.sql += ' AND ';
        this.visit(state, node.high);
        return;
      case 'isNull':
        this.visit(state, node.expr);
        state.sql += node.negated ? ' IS NOT NULL' : ' IS NULL';
        return;
      case 'exists':
        state.sql += node.negated ? 'NOT EXISTS ' : 'EXISTS ';
        this.visit(state, node.query);
        return;
      case 'func':
        state.sql += `${node.name}(${node.distinct ? 'DISTINCT ' : ''}`;
        node.args.forEach((arg, i) => {
          if (i > 0) state.sql += ', ';
          this.visit(state, arg);
        });
        state.sql += ')';
        return;
      case 'star':
        state.sql += '*';
        return;
      case 'tableRef': {
        const t = node.table;
        state.tables.add(t.$name);
        state.sql +=
          t.$alias === t.$name ? this.quote(t.$name) : `${this.quote(t.$name)} AS ${this.quote(t.$alias)}`;
        return;
      }
      case 'subquery': {
        const saved = state.qualify;
        state.qualify = true;
        state.sql += '(';
        if (node.query.kind === 'select') this.select(state, node.query);
        else this.compound(state, node.query);
        state.sql += ')';
        state.qualify = saved;
        if (node.alias) state.sql += ` AS ${this.quote(node.alias)}`;
        return;
      }
      case 'excluded':
        state.sql += `excluded.${this.quote(node.column.name)}`;
        return;
      case 'list':
        this.list(state, node.items);
        return;
    }
  }

  private list(state: CompileState, items: readonly Node[]): void {
    state.sql += '(';
    items.forEach((item, i) => {
      if (i > 0) state.sql += ', ';
      this.visit(state, item);
    });
    state.sql += ')';
  }

  protected ilike(state: CompileState, left: Node, right: Node, negated: boolean): void {
    this.visit(state, left);
    state.sql += negated ? ' NOT ILIKE ' : ' ILIKE ';
    this.visit(state, right);
  }

  private selectFields(state: CompileState, fields: readonly SelectField[]): void {
    // A list of plain columns compiles to the same text every time: cache it per field list.
    const cacheable = state.qualify && fields.every((f) => f.expr.kind === 'column' || f.expr.kind === 'ref');
    if (cacheable) {
      const cached = this.selectLists.get(fields);
      if (cached !== undefined) {
        state.sql += cached;
        return;
      }
    }
    const start = state.sql.length;
    fields.forEach((field, i) => {
      if (i > 0) state.sql += ', ';
      this.visit(state, field.expr);
      const expr = field.expr;
      const named = expr.kind === 'column' ? expr.name : expr.kind === 'ref' ? expr.name : undefined;
      if (field.path.length === 1 && named !== field.key) state.sql += ` AS ${this.quote(field.key)}`;
    });
    if (cacheable) this.selectLists.set(fields, state.sql.slice(start));
  }

  protected select(state: CompileState, node: SelectNode): void {
    state.sql += node.distinct ? 'SELECT DISTINCT ' : 'SELECT ';
    this.selectFields(state, node.fields);
    if (node.from) {
      state.sql += ' FROM ';
      this.visit(state, node.from);
    }
    for (const join of node.joins) {
      state.sql += join.type === 'inner' ? ' INNER JOIN ' : ' LEFT JOIN ';
      this.visit(state, join.source);
      state.sql += ' ON ';
      this.visit(state, join.on);
    }
    if (node.where) {
      state.sql += ' WHERE ';
      this.visit(state, node.where);
    }
    if (node.groupBy.length > 0) {
      state.sql += ' GROUP BY ';
      node.groupBy.forEach((g, i) => {
        if (i > 0) state.sql += ', ';
        this.visit(state, g);
      });
    }
    if (node.having) {
      state.sql += ' HAVING ';
      this.visit(state, node.having);
    }
    this.orderLimit(state, node.orderBy, node.limit, node.offset);
  }

  private orderLimit(
    state: CompileState,
    orderBy: readonly OrderNode[],
    limit: Node | undefined,
    offset: Node | undefined,
  ): void {
    if (orderBy.length > 0) {
      state.sql += ' ORDER BY ';
      orderBy.forEach((o, i) => {
        if (i > 0) state.sql += ', ';
        this.visit(state, o.expr);
        state.sql += ` ${o.direction}`;
        if (o.nulls) state.sql += ` NULLS ${o.nulls}`;
      });
    }
    this.limitOffset(state, limit, offset);
  }

  protected limitOffset(state: CompileState, limit: Node | undefined, offset: Node | undefined): void {
    if (limit) {
      state.sql += ' LIMIT ';
      this.visit(state, limit);
    }
    if (offset) {
      state.sql += ' OFFSET ';
      this.visit(state, offset);
    }
  }

  private compound(state: CompileState, node: CompoundNode): void {
    // SQLite takes no parentheses around the parts of a compound select, so a part with its own
    // ORDER BY or LIMIT is wrapped as a subquery instead (valid on both dialects).
    const part = (query: SelectNode, i: number) => {
      if (query.orderBy.length > 0 || query.limit || query.offset) {
        state.sql += 'SELECT * FROM (';
        this.select(state, query);
        state.sql += `) AS ${this.quote(`_part${i}`)}`;
      } else this.select(state, query);
    };
    part(node.first, 0);
    node.rest.forEach((r, i) => {
      state.sql += ` ${r.op} `;
      part(r.query, i + 1);
    });
    // A compound is ordered by its output columns: a selected column is named by the key it was
    // selected under (PostgreSQL accepts nothing else).
    const fields = node.first.fields;
    const orderBy = node.orderBy.map((o) => {
      const field = fields.find((f) => f.expr === o.expr && f.path.length === 1);
      return field ? { ...o, expr: { kind: 'ref', table: undefined, name: field.key } as const } : o;
    });
    const saved = state.qualify;
    state.qualify = false;
    this.orderLimit(state, orderBy, node.limit, node.offset);
    state.qualify = saved;
  }

  /** A missing value in a multi-row insert. */
  protected abstract defaultCell(state: CompileState, column: Column<any, any, any, any>): void;

  private insert(state: CompileState, node: InsertNode): void {
    state.sql += `INSERT INTO ${this.quote(node.table.$name)}`;
    if (node.columns.length === 0) {
      state.sql += ' DEFAULT VALUES';
    } else {
      state.sql += ` (${node.columns.map((c) => this.quote(c.name)).join(', ')}) VALUES `;
      const rows = node.rows;
      if ('kind' in rows) {
        // An insert's values come first in its text, so they fill a new parameter list.
        state.params = this.encodePlainRows(node.columns, rows.rows);
        const plainText = !node.onConflict && !node.returning;
        state.sql = this.valuesText(state.sql, rows.rows.length, node.columns.length, plainText);
      } else if (!this.plainValues(state, rows, node.columns.length)) {
        rows.forEach((row, r) => {
          if (r > 0) state.sql += ', ';
          state.sql += '(';
          row.forEach((cell, i) => {
            if (i > 0) state.sql += ', ';
            if (cell === undefined) this.defaultCell(state, node.columns[i]!);
            else this.visit(state, cell);
          });
          state.sql += ')';
        });
      }
    }
    const conflict = node.onConflict;
    if (conflict) {
      state.sql += ' ON CONFLICT';
      if (conflict.target.length > 0) {
        state.sql += ` (${conflict.target.map((c) => this.quote(c.name)).join(', ')})`;
        if (conflict.targetWhere) {
          state.sql += ' WHERE ';
          this.unqualified(state, conflict.targetWhere);
        }
      }
      if (conflict.set.length === 0) state.sql += ' DO NOTHING';
      else {
        state.sql += ' DO UPDATE SET ';
        this.assignments(state, conflict.set);
        if (conflict.where) {
          state.sql += ' WHERE ';
          this.visit(state, conflict.where);
        }
      }
    }
    this.returning(state, node.returning);
  }

  private readonly valuesTexts = new Map<string, string>();

  private readonly insertTexts = new Map<string, string>();

  /**
   * `head` followed by the VALUES text of `rows` rows of `width` parameters. With `whole`, the
   * statement is the whole text and a short one is cached, so a bulk insert's statements are
   * one string each time: the driver's statement cache then finds it without reading it again.
   */
  private valuesText(head: string, rows: number, width: number, whole: boolean): string {
    if (!whole) return head + this.valuesShape(rows, width);
    const key = `${head}${rows}`;
    let text = this.insertTexts.get(key);
    if (text === undefined) {
      text = head + this.valuesShape(rows, width);
      if (text.length <= 65_536) {
        if (this.insertTexts.size >= 200) this.insertTexts.clear();
        this.insertTexts.set(key, text);
      }
    }
    return text;
  }

  /** The `(?, ?), (?, ?)` text of `rows` rows of `width` parameters, cached by that shape. */
  private valuesShape(rows: number, width: number): string {
    const key = `${rows}x${width}`;
    let text = this.valuesTexts.get(key);
    if (text === undefined) {
      const parts: string[] = [];
      for (let r = 0; r < rows; r++) {
        const cells: string[] = [];
        for (let c = 0; c < width; c++) cells.push(this.parameter(r * width + c));
        parts.push(`(${cells.join(', ')})`);
      }
      text = parts.join(', ');
      if (this.valuesTexts.size > 200) this.valuesTexts.clear();
      this.valuesTexts.set(key, text);
    }
    return text;
  }

  /**
   * The fast path of a bulk insert: when every cell is a plain value, the values are encoded
   * straight into the parameter list and the VALUES text comes from a cache keyed by the shape, so
   * a 10,000-row insert does not walk 60,000 nodes. (Rows the builder found plain and complete
   * come as a PlainRowsNode and skip the nodes altogether.)
   */
  private plainValues(
    state: CompileState,
    rows: readonly (readonly (Node | undefined)[])[],
    width: number,
  ): boolean {
    if (state.inline || state.params.length > 0) return false;
    for (const row of rows)
      for (const cell of row) if (cell === undefined || cell.kind !== 'param') return false;
    const params = state.params;
    for (const row of rows) {
      for (const cell of row) {
        const p = cell as Extract<Node, { kind: 'param' }>;
        params.push(this.encode(p.value, p.type, p.column));
      }
    }
    state.sql += this.valuesShape(rows.length, width);
    return true;
  }

  /**
   * Encodes every row's value of every column, in order, with each column's encoder looked up
   * once rather than once per cell; a wrong value fails naming its column, as `encode` does.
   */
  private encodePlainRows(
    columns: readonly Column<any, any, any, any>[],
    rows: readonly Readonly<Record<string, unknown>>[],
  ): unknown[] {
    const width = columns.length;
    const keys = columns.map((c) => c.key);
    const encoders = columns.map((c) => this.dialect.physicalType(c.type).toDriver);
    // Sized up front: pushing tens of thousands of values grows (and copies) a large array.
    const params = new Array<unknown>(rows.length * width);
    let at = 0;
    let c = 0;
    try {
      for (const row of rows) {
        for (c = 0; c < width; c++) {
          const value = row[keys[c]!];
          params[at++] = value === null ? null : encoders[c]!(value);
        }
      }
    } catch (error) {
      const column = columns[c]!;
      if (error instanceof InvalidValueError) {
        throw new InvalidValueError(`${column.table.$name}.${column.name}: ${error.message}`, {
          cause: error,
        });
      }
      throw error;
    }
    return params;
  }

  private unqualified(state: CompileState, node: Node): void {
    const saved = state.qualify;
    state.qualify = false;
    this.visit(state, node);
    state.qualify = saved;
  }

  private assignments(state: CompileState, set: UpdateNode['set']): void {
    set.forEach((s, i) => {
      if (i > 0) state.sql += ', ';
      state.sql += `${this.quote(s.column.name)} = `;
      this.visit(state, s.value);
    });
  }

  private returning(state: CompileState, fields: readonly SelectField[] | undefined): void {
    if (!fields) return;
    state.sql += ' RETURNING ';
    const saved = state.qualify;
    state.qualify = false;
    this.selectFields(state, fields);
    state.qualify = saved;
  }

  private update(state: CompileState, node: UpdateNode): void {
    state.sql += `UPDATE ${this.quote(node.table.$name)} SET `;
    this.assignments(state, node.set);
    if (node.where) {
      state.sql += ' WHERE ';
      this.visit(state, node.where);
    }
    this.returning(state, node.returning);
  }

  private delete(state: CompileState, node: DeleteNode): void {
    state.sql += `DELETE FROM ${this.quote(node.table.$name)}`;
    if (node.where) {
      state.sql += ' WHERE ';
      this.visit(state, node.where);
    }
    this.returning(state, node.returning);
  }
}

export type { CompileState };
