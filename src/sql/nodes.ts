import type { Column } from '../schema/column.js';
import type { ColumnType } from '../schema/column-type.js';
import type { TableBase } from '../schema/table.js';

/**
 * The SQL tree. Every query is a tree of these plain objects; builders only ever assemble them and
 * only `src/dialect/` turns them into text. A `Column` is itself a node (kind `column`).
 */
export type Node =
  | Column<any, any, any, any>
  | RefNode
  | ParamNode
  | PlaceholderNode
  | RawNode
  | IdentifierNode
  | BinaryNode
  | ILikeNode
  | LogicalNode
  | NotNode
  | InNode
  | BetweenNode
  | IsNullNode
  | ExistsNode
  | FuncNode
  | StarNode
  | TableRefNode
  | SubqueryNode
  | ExcludedNode
  | ListNode;

/** A column of a subquery or of a table known only by name: `"sq"."title"`. */
export interface RefNode {
  readonly kind: 'ref';
  readonly table: string | undefined;
  readonly name: string;
}

/** A value bound as a parameter, encoded by its column type when it has one. */
export interface ParamNode {
  readonly kind: 'param';
  readonly value: unknown;
  readonly type: ColumnType | undefined;
  /** The column the value is compared with or written to, named in errors about the value. */
  readonly column?: Column<any, any, any, any>;
}

/** A named slot filled in when a prepared query runs: `sql.placeholder('id')`. */
export interface PlaceholderNode {
  readonly kind: 'placeholder';
  readonly name: string;
  readonly type: ColumnType | undefined;
  /** The column the value is compared with or written to, named in errors about the value. */
  readonly column?: Column<any, any, any, any>;
}

/** A `sql` template: literal SQL text interleaved with nodes. */
export interface RawNode {
  readonly kind: 'raw';
  readonly chunks: readonly (string | Node)[];
}

/** A quoted identifier from `sql.identifier()`: `"schema"."name"`. */
export interface IdentifierNode {
  readonly kind: 'identifier';
  readonly names: readonly string[];
}

export type BinaryOperator = '=' | '<>' | '>' | '>=' | '<' | '<=' | 'LIKE' | 'NOT LIKE';

export interface BinaryNode {
  readonly kind: 'binary';
  readonly op: BinaryOperator;
  readonly left: Node;
  readonly right: Node;
}

/** Case-insensitive LIKE: `ILIKE` on PostgreSQL, `lower(a) LIKE lower(b)` on SQLite. */
export interface ILikeNode {
  readonly kind: 'ilike';
  readonly left: Node;
  readonly right: Node;
  readonly negated: boolean;
}

export interface LogicalNode {
  readonly kind: 'logical';
  readonly op: 'AND' | 'OR';
  readonly items: readonly Node[];
}

export interface NotNode {
  readonly kind: 'not';
  readonly item: Node;
}

export interface InNode {
  readonly kind: 'in';
  readonly left: Node;
  readonly right: readonly Node[] | SubqueryNode;
  readonly negated: boolean;
}

export interface BetweenNode {
  readonly kind: 'between';
  readonly expr: Node;
  readonly low: Node;
  readonly high: Node;
  readonly negated: boolean;
}

export interface IsNullNode {
  readonly kind: 'isNull';
  readonly expr: Node;
  readonly negated: boolean;
}

export interface ExistsNode {
  readonly kind: 'exists';
  readonly query: SubqueryNode;
  readonly negated: boolean;
}

/** A function call; `distinct` gives `count(DISTINCT x)`. */
export interface FuncNode {
  readonly kind: 'func';
  readonly name: string;
  readonly args: readonly Node[];
  readonly distinct: boolean;
}

export interface StarNode {
  readonly kind: 'star';
}

/** A table in FROM, JOIN, INSERT INTO ...: its name, and its alias when it differs. */
export interface TableRefNode {
  readonly kind: 'tableRef';
  readonly table: TableBase;
}

/** A nested query: in FROM (with an alias), in `IN (...)`, `EXISTS (...)` or as a scalar. */
export interface SubqueryNode {
  readonly kind: 'subquery';
  readonly query: SelectNode | CompoundNode;
  readonly alias: string | undefined;
}

/** `excluded.col` inside ON CONFLICT DO UPDATE. */
export interface ExcludedNode {
  readonly kind: 'excluded';
  readonly column: Column<any, any, any, any>;
}

/** A parenthesised, comma separated list. */
export interface ListNode {
  readonly kind: 'list';
  readonly items: readonly Node[];
}

export interface SelectField {
  /** The key in the result object (and the column alias in SQL). */
  readonly key: string;
  /** Path in the result: one key, or [table, key] for whole-row joins. */
  readonly path: readonly string[];
  readonly expr: Node;
  readonly decoder: Decoder | undefined;
  /** For whole-table selections with joins: rows whose fields of this group are all null become null. */
  readonly nullableGroup: string | undefined;
}

/** How a result value is turned into its app value: a column type, or a function. */
export type Decoder = ColumnType | ((value: unknown) => unknown);

export interface JoinNode {
  readonly type: 'inner' | 'left';
  readonly source: TableRefNode | SubqueryNode;
  readonly on: Node;
}

export interface OrderNode {
  readonly expr: Node;
  readonly direction: 'ASC' | 'DESC';
  readonly nulls: 'FIRST' | 'LAST' | undefined;
}

export interface SelectNode {
  readonly kind: 'select';
  readonly fields: readonly SelectField[];
  readonly distinct: boolean;
  readonly from: TableRefNode | SubqueryNode | undefined;
  readonly joins: readonly JoinNode[];
  readonly where: Node | undefined;
  readonly groupBy: readonly Node[];
  readonly having: Node | undefined;
  readonly orderBy: readonly OrderNode[];
  readonly limit: Node | undefined;
  readonly offset: Node | undefined;
}

export interface CompoundNode {
  readonly kind: 'compound';
  readonly first: SelectNode;
  readonly rest: readonly {
    readonly op: 'UNION' | 'UNION ALL' | 'INTERSECT' | 'EXCEPT';
    readonly query: SelectNode;
  }[];
  readonly orderBy: readonly OrderNode[];
  readonly limit: Node | undefined;
  readonly offset: Node | undefined;
}

export interface InsertNode {
  readonly kind: 'insert';
  readonly table: TableBase;
  readonly columns: readonly Column<any, any, any, any>[];
  /** One row of nodes per inserted row, in `columns` order; undefined means DEFAULT. */
  readonly rows: readonly (readonly (Node | undefined)[])[] | PlainRowsNode;
  readonly onConflict: OnConflictNode | undefined;
  readonly returning: readonly SelectField[] | undefined;
}

/**
 * The rows of a bulk insert as the app gave them, when every row has a plain value (no SQL, no
 * placeholder) for every column: the compiler encodes them straight from the objects, so a
 * 10,000-row insert builds no node per cell.
 */
export interface PlainRowsNode {
  readonly kind: 'plainRows';
  readonly rows: readonly Readonly<Record<string, unknown>>[];
}

export interface OnConflictNode {
  readonly target: readonly Column<any, any, any, any>[];
  readonly targetWhere: Node | undefined;
  /** Empty for DO NOTHING. */
  readonly set: readonly { readonly column: Column<any, any, any, any>; readonly value: Node }[];
  readonly where: Node | undefined;
}

export interface UpdateNode {
  readonly kind: 'update';
  readonly table: TableBase;
  readonly set: readonly { readonly column: Column<any, any, any, any>; readonly value: Node }[];
  readonly where: Node | undefined;
  readonly returning: readonly SelectField[] | undefined;
}

export interface DeleteNode {
  readonly kind: 'delete';
  readonly table: TableBase;
  readonly where: Node | undefined;
  readonly returning: readonly SelectField[] | undefined;
}

export type QueryNode = SelectNode | CompoundNode | InsertNode | UpdateNode | DeleteNode | RawNode;
