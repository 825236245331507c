import type { FilterJson } from '../protocol/filter-tree.js';

/**
 * A filter without subqueries that admits every row `where` may admit on the server: each
 * subquery condition (`inArray`/`notInArray` with a subquery, `exists`, `notExists`) becomes
 * true, or false under an odd number of `not`s, and constants fold away (`true`: every row,
 * `false`: none). A client cannot run a shape's subqueries itself: its copy of the subquery's
 * table holds only what its own shapes of that table hold (none, when it syncs no shape of it),
 * and the server applies the table's read rule inside the subquery. So what a shape holds is
 * judged on the client by this superset, as the client already does for read rules it never
 * sees: a row is deleted as no longer in a shape only when the server's snapshot of that shape
 * lacked it, and never while another shape's superset still admits it.
 *
 * @example
 *   filterSuperset({ op: 'and', args: [{ op: 'eq', column: 'done', value: false }, { op: 'exists', subquery: { table: 'members' } }] });
 *   // { op: 'eq', column: 'done', value: false }
 */
export function filterSuperset(where: FilterJson, widen = true): FilterJson | boolean {
  switch (where.op) {
    case 'and':
    case 'or': {
      // false decides an and, true an or; the other constant drops out.
      const decides = where.op === 'or';
      const args: FilterJson[] = [];
      for (const arg of where.args) {
        const folded = filterSuperset(arg, widen);
        if (folded === decides) return decides;
        if (typeof folded !== 'boolean') args.push(folded);
      }
      if (args.length === 0) return !decides;
      return args.length === 1 ? args[0]! : { op: where.op, args };
    }
    case 'not': {
      const arg = filterSuperset(where.arg, !widen);
      return typeof arg === 'boolean' ? !arg : { op: 'not', arg };
    }
    case 'exists':
    case 'notExists':
      return widen;
    default:
      return 'subquery' in where ? widen : where;
  }
}
