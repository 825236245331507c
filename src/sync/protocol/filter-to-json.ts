import { UsageError } from '../../errors.js';
import type { Column } from '../../schema/column.js';
import type { TableBase } from '../../schema/table.js';
import type { BinaryOperator, Node, SubqueryNode } from '../../sql/nodes.js';
import type { SQL } from '../../sql/sql.js';
import type { FilterJson, SubqueryJson } from './filter-tree.js';
import { encodeValue, type JsonValue } from './value-codec.js';

type AnyColumn = Column<any, any, any, any>;
type ComparisonOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte';

const BINARY_OPS: Record<BinaryOperator, ComparisonOp | 'like' | 'notLike'> = {
  '=': 'eq',
  '<>': 'ne',
  '>': 'gt',
  '>=': 'gte',
  '<': 'lt',
  '<=': 'lte',
  LIKE: 'like',
  'NOT LIKE': 'notLike',
};

/** `a < b` is `b > a`: a comparison with its sides swapped. */
const MIRRORED: Record<ComparisonOp, ComparisonOp> = {
  eq: 'eq',
  ne: 'ne',
  gt: 'lt',
  gte: 'lte',
  lt: 'gt',
  lte: 'gte',
};

/** What a node is, in words, for an error saying it cannot be sent. */
function describeNode(node: Node): string {
  switch (node.kind) {
    case 'raw':
      return 'raw SQL (sql`...`)';
    case 'func':
      return `a function call (${node.name}())`;
    case 'subquery':
      return 'a subquery';
    case 'placeholder':
      return `the placeholder "${node.name}" (pass the value itself)`;
    case 'column':
      return `the column ${node.table.$name}.${node.name} on its own`;
    case 'param':
      return 'a bare value';
    default:
      return `a "${node.kind}" expression`;
  }
}

function notExpressible(what: string): UsageError {
  return new UsageError(
    `filterToJson: ${what} cannot be sent as a shape filter; a shape filter compares columns of its table with values, using eq, ne, gt, gte, lt, lte, inArray, notInArray, isNull, isNotNull, between, notBetween, like, notLike, ilike, notIlike, and, or, not, and reads other tables through inArray(column, db.select({ c }).from(t).where(...)) or exists(db.select().from(t).where(...)) (put anything else in the server's read rules)`,
  );
}

/**
 * Turns a condition built with the expression builders into a `FilterJson` tree, ready to travel
 * in a `hello` or `subscribe` message. Every column must belong to one table (`table`, when
 * given), except inside a subquery (`inArray(col, db.select({ c }).from(t).where(...))`,
 * `exists(...)`, their negations), whose columns belong to its own table and may be compared with
 * columns of the tables around it (a correlated subquery). A subquery reads one table, not one
 * its enclosing filters read, with no join, grouping, order or limit. Values are encoded for
 * their column's type. Anything a filter cannot say (`sql` text, a function, a placeholder, a
 * comparison of two columns of one table) throws a `UsageError` naming it.
 *
 * @example
 *   filterToJson(and(eq(todos.listId, listId), eq(todos.done, false))!, todos);
 *   // { op: 'and', args: [{ op: 'eq', column: 'list_id', value: '…' }, { op: 'eq', column: 'done', value: false }] }
 *   filterToJson(exists(db.select().from(members).where(and(eq(members.listId, todos.listId), eq(members.userId, 'alice')))), todos);
 *   // { op: 'exists', subquery: { table: 'members', where: { op: 'and', args: [{ op: 'eq', column: 'list_id', outer: { table: 'todos', column: 'list_id' } }, …] } } }
 */
export function filterToJson(condition: SQL<unknown>, table?: TableBase): FilterJson {
  // The tables in scope, outermost first: the shape's (found from its first column when not
  // given), then one per subquery the walk is in.
  const scope: (string | undefined)[] = [table?.$name];
  const here = (node: AnyColumn): string => {
    if (scope.length === 1) scope[0] ??= node.table.$name;
    return scope[scope.length - 1]!;
  };

  const columnOf = (node: Node): AnyColumn => {
    if (node.kind !== 'column') throw notExpressible(`${describeNode(node)} in place of a column`);
    const current = here(node);
    if (node.table.$name === current) return node;
    if (scope.length === 1) {
      throw new UsageError(
        `filterToJson: the filter uses ${node.table.$name}.${node.name}, but a shape filter can only use columns of its own table "${current}" (read other tables through a subquery)`,
      );
    }
    const around = scope.includes(node.table.$name)
      ? `; compare a column of ${current} with it instead (eq(${current}.x, ${node.table.$name}.${node.name}))`
      : '';
    throw new UsageError(
      `filterToJson: a subquery on "${current}" uses ${node.table.$name}.${node.name}, but its conditions test columns of "${current}"${around}`,
    );
  };

  const twoColumns = (a: AnyColumn, b: AnyColumn) =>
    notExpressible(`comparing two columns (${a.table.$name}.${a.name} with ${b.table.$name}.${b.name})`);

  const encodedOperand = (node: Node, column: AnyColumn): JsonValue => {
    if (node.kind === 'column') throw twoColumns(column, node);
    if (node.kind !== 'param') throw notExpressible(describeNode(node));
    try {
      return encodeValue(column.type, node.value === undefined ? null : node.value);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new UsageError(`filterToJson: the value for ${column.table.$name}.${column.name}: ${reason}`, {
        cause,
      });
    }
  };

  // A pattern is not a value of the column (`'Mi%'` is no enum member), so it skips the codec.
  const patternOf = (node: Node, column: AnyColumn): string => {
    if (node.kind === 'param' && typeof node.value === 'string') return node.value;
    if (node.kind === 'param') {
      throw new UsageError(
        `filterToJson: the pattern for ${column.table.$name}.${column.name} must be a string`,
      );
    }
    throw notExpressible(`${describeNode(node)} as a pattern`);
  };

  /** A comparison of two columns: inside a subquery, its table's column with one around it. */
  const correlated = (op: ComparisonOp, left: AnyColumn, right: AnyColumn): FilterJson => {
    const current = here(left);
    // The tree has the subquery's own column on the left.
    const swap = left.table.$name !== current && right.table.$name === current;
    // A filter that starts with a subquery names its own table first here.
    if (scope.length > 1) scope[0] ??= (swap ? left : right).table.$name;
    const inner = columnOf(swap ? right : left);
    const outer = swap ? left : right;
    if (!scope.slice(0, -1).includes(outer.table.$name)) throw twoColumns(inner, outer);
    return {
      op: swap ? MIRRORED[op] : op,
      column: inner.name,
      outer: { table: outer.table.$name, column: outer.name },
    };
  };

  const subquery = (node: SubqueryNode, selects: boolean): SubqueryJson => {
    const query = node.query;
    if (query.kind !== 'select') throw notExpressible('a UNION, INTERSECT or EXCEPT in a subquery');
    const from = query.from;
    if (from?.kind !== 'tableRef')
      throw notExpressible('a subquery that reads no table, or another subquery');
    const name = from.table.$name;
    if (from.table.$alias !== name) {
      throw notExpressible(`an aliased table (${name} as ${from.table.$alias}) in a subquery`);
    }
    if (query.joins.length > 0) throw notExpressible('a subquery with a join');
    if (query.groupBy.length > 0 || query.having) throw notExpressible('a subquery with GROUP BY or HAVING');
    if (query.orderBy.length > 0 || query.limit || query.offset) {
      throw notExpressible('a subquery with ORDER BY, LIMIT or OFFSET');
    }
    if (scope.includes(name)) {
      throw new UsageError(
        `filterToJson: a subquery reads "${name}", which the filter around it reads already; a subquery must read another table`,
      );
    }
    scope.push(name);
    try {
      let column: string | undefined;
      if (selects) {
        const expr = query.fields.length === 1 ? query.fields[0]!.expr : undefined;
        if (expr?.kind !== 'column') {
          throw notExpressible(
            'inArray with a subquery that does not select exactly one column (select({ id: t.id }))',
          );
        }
        column = columnOf(expr).name;
      }
      const where = query.where ? walk(query.where) : undefined;
      return {
        table: name,
        ...(column === undefined ? {} : { column }),
        ...(where === undefined ? {} : { where }),
      };
    } finally {
      scope.pop();
    }
  };

  const walk = (node: Node): FilterJson => {
    switch (node.kind) {
      case 'binary': {
        const op = BINARY_OPS[node.op];
        if (op !== 'like' && op !== 'notLike' && node.left.kind === 'column' && node.right.kind === 'column')
          return correlated(op, node.left, node.right);
        const column = columnOf(node.left);
        if (op === 'like' || op === 'notLike')
          return { op, column: column.name, pattern: patternOf(node.right, column) };
        return { op, column: column.name, value: encodedOperand(node.right, column) };
      }
      case 'ilike': {
        const column = columnOf(node.left);
        return {
          op: node.negated ? 'notIlike' : 'ilike',
          column: column.name,
          pattern: patternOf(node.right, column),
        };
      }
      case 'in': {
        const column = columnOf(node.left);
        const op = node.negated ? 'notInArray' : 'inArray';
        if (!Array.isArray(node.right))
          return { op, column: column.name, subquery: subquery(node.right as SubqueryNode, true) };
        return {
          op,
          column: column.name,
          values: (node.right as readonly Node[]).map((item) => encodedOperand(item, column)),
        };
      }
      case 'exists':
        return { op: node.negated ? 'notExists' : 'exists', subquery: subquery(node.query, false) };
      case 'between': {
        const column = columnOf(node.expr);
        return {
          op: node.negated ? 'notBetween' : 'between',
          column: column.name,
          low: encodedOperand(node.low, column),
          high: encodedOperand(node.high, column),
        };
      }
      case 'isNull':
        return { op: node.negated ? 'isNotNull' : 'isNull', column: columnOf(node.expr).name };
      case 'logical':
        return { op: node.op === 'AND' ? 'and' : 'or', args: node.items.map(walk) };
      case 'not':
        return { op: 'not', arg: walk(node.item) };
      default:
        throw notExpressible(describeNode(node));
    }
  };

  return walk(condition.node);
}
