import type { Column } from '../schema/column.js';
import type { TableBase } from '../schema/table.js';
import type { Node } from '../sql/nodes.js';

/** Three-valued like SQL: true, false, or null when it cannot be told (a NULL, an unknown column). */
type Truth = boolean | null;
type Value = { known: true; value: unknown } | { known: false };
type Evaluate = (row: Readonly<Record<string, unknown>>) => Truth;
type ValueOf = (row: Readonly<Record<string, unknown>>) => Value;

const UNKNOWN: Value = { known: false };

/**
 * How values of a column type compare in TypeScript the way they compare in SQL. Text compares
 * for equality only (ordering depends on the database's collation); types whose SQL comparison
 * TypeScript cannot mirror (json, bytes, numeric, custom) are not handled at all.
 */
function normaliser(
  column: Column<any, any, any, any>,
): { ordered: boolean; norm: (v: unknown) => unknown } | undefined {
  switch (column.type.kind) {
    case 'uuid':
      return { ordered: false, norm: (v) => (typeof v === 'string' ? v.toLowerCase() : v) };
    case 'text':
    case 'enum':
    case 'boolean':
      return { ordered: false, norm: (v) => v };
    case 'integer':
    case 'real':
      return { ordered: true, norm: (v) => (typeof v === 'bigint' ? Number(v) : v) };
    case 'bigint':
      return { ordered: true, norm: (v) => (typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v) };
    case 'timestamp':
      return { ordered: true, norm: (v) => (v instanceof Date ? v.getTime() : v) };
    default:
      return undefined;
  }
}

function compare(op: string, a: unknown, b: unknown): Truth {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  switch (op) {
    case '=':
      return a === b;
    case '<>':
      return a !== b;
    case '<':
      return (a as number) < (b as number);
    case '<=':
      return (a as number) <= (b as number);
    case '>':
      return (a as number) > (b as number);
    case '>=':
      return (a as number) >= (b as number);
  }
  return null;
}

/**
 * Turns the WHERE clause of a single-table query into a TypeScript test of one row, when the
 * clause is simple: comparisons of the table's columns with values, IS NULL, IN (values), BETWEEN,
 * AND, OR, NOT. Anything else (subqueries, functions, columns of other tables) gives undefined,
 * and the live query falls back to re-running on every change of the table.
 */
export function compileRowPredicate(where: Node, table: TableBase): Evaluate | undefined {
  const column = (node: Node): Column<any, any, any, any> | undefined =>
    node.kind === 'column' && node.table.$alias === table.$alias && node.table.$name === table.$name
      ? node
      : undefined;

  // A column or a value, normalised for the column type it is compared with.
  const operand = (node: Node, norm: (v: unknown) => unknown): ValueOf | undefined => {
    const c = column(node);
    if (c) {
      const name = c.name;
      return (row) => (Object.hasOwn(row, name) ? { known: true, value: norm(row[name]) } : UNKNOWN);
    }
    if (node.kind === 'param') {
      const value: Value = { known: true, value: norm(node.value) };
      return () => value;
    }
    return undefined;
  };

  const typed = (nodes: Node[]): { ordered: boolean; norm: (v: unknown) => unknown } | undefined => {
    const c = nodes.map(column).find((x) => x !== undefined);
    return c ? normaliser(c) : undefined;
  };

  const build = (node: Node): Evaluate | undefined => {
    switch (node.kind) {
      case 'binary': {
        if (node.op === 'LIKE' || node.op === 'NOT LIKE') return undefined;
        const t = typed([node.left, node.right]);
        if (!t || (!t.ordered && node.op !== '=' && node.op !== '<>')) return undefined;
        const left = operand(node.left, t.norm);
        const right = operand(node.right, t.norm);
        if (!left || !right) return undefined;
        const op = node.op;
        return (row) => {
          const a = left(row);
          const b = right(row);
          return a.known && b.known ? compare(op, a.value, b.value) : null;
        };
      }
      case 'isNull': {
        const c = column(node.expr);
        if (!c) return undefined;
        const name = c.name;
        const negated = node.negated;
        return (row) => {
          if (!Object.hasOwn(row, name)) return null;
          const isNull = row[name] === null || row[name] === undefined;
          return negated ? !isNull : isNull;
        };
      }
      case 'in': {
        if (!Array.isArray(node.right)) return undefined;
        const t = typed([node.left]);
        if (!t) return undefined;
        const left = operand(node.left, t.norm);
        const items = (node.right as Node[]).map((n) =>
          n.kind === 'param' ? operand(n, t.norm) : undefined,
        );
        if (!left || items.some((i) => !i)) return undefined;
        const negated = node.negated;
        return (row) => {
          const a = left(row);
          if (!a.known) return null;
          let sawNull = false;
          for (const item of items) {
            const b = item!(row);
            const eq = b.known ? compare('=', a.value, b.value) : null;
            if (eq === true) return !negated;
            if (eq === null) sawNull = true;
          }
          if (items.length === 0) return negated;
          return sawNull ? null : negated;
        };
      }
      case 'between': {
        const t = typed([node.expr]);
        if (!t?.ordered) return undefined;
        const e = operand(node.expr, t.norm);
        const low = operand(node.low, t.norm);
        const high = operand(node.high, t.norm);
        if (!e || !low || !high) return undefined;
        const negated = node.negated;
        return (row) => {
          const v = e(row);
          const l = low(row);
          const h = high(row);
          if (!v.known || !l.known || !h.known) return null;
          const inside = and([compare('>=', v.value, l.value), compare('<=', v.value, h.value)]);
          return negated ? not(inside) : inside;
        };
      }
      case 'logical': {
        const items = node.items.map(build);
        if (items.some((i) => !i)) return undefined;
        const op = node.op;
        return (row) => (op === 'AND' ? and : or)(items.map((i) => i!(row)));
      }
      case 'not': {
        const item = build(node.item);
        return item ? (row) => not(item(row)) : undefined;
      }
      default:
        return undefined;
    }
  };
  return build(where);
}

function and(values: Truth[]): Truth {
  if (values.includes(false)) return false;
  return values.includes(null) ? null : true;
}

function or(values: Truth[]): Truth {
  if (values.includes(true)) return true;
  return values.includes(null) ? null : false;
}

function not(value: Truth): Truth {
  return value === null ? null : !value;
}
