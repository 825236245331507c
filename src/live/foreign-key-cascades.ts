import type { Schema } from '../schema/schema.js';

/** Referential actions that change rows of the referencing table. */
const CHANGES_CHILD = new Set(['cascade', 'set null', 'set default']);

/**
 * For each table, the tables whose rows a write to it can change through foreign-key actions
 * (ON DELETE / ON UPDATE CASCADE, SET NULL, SET DEFAULT), followed transitively. A delete of a list
 * that cascades to its todos is a change of todos, though the statement only named lists.
 */
export function foreignKeyCascades(schema: Schema): ReadonlyMap<string, readonly string[]> {
  const direct = new Map<string, Set<string>>();
  const link = (parent: string, child: string) => {
    let children = direct.get(parent);
    if (!children) direct.set(parent, (children = new Set()));
    children.add(child);
  };
  for (const table of schema.tableList) {
    for (const column of table.$columnList) {
      const ref = column.references;
      if (ref && (CHANGES_CHILD.has(ref.onDelete ?? '') || CHANGES_CHILD.has(ref.onUpdate ?? ''))) {
        link(ref.target().table.$name, table.$name);
      }
    }
    for (const fk of table.$foreignKeys) {
      if (CHANGES_CHILD.has(fk.onDelete ?? '') || CHANGES_CHILD.has(fk.onUpdate ?? '')) {
        const target = fk.target()[0];
        if (target) link(target.table.$name, table.$name);
      }
    }
  }
  const closure = new Map<string, readonly string[]>();
  for (const parent of direct.keys()) {
    const seen = new Set<string>();
    const stack = [...direct.get(parent)!];
    while (stack.length > 0) {
      const t = stack.pop()!;
      // A table that cascades into itself (a tree) counts too: its other rows change, unknown which.
      if (seen.has(t)) continue;
      seen.add(t);
      stack.push(...(direct.get(t) ?? []));
    }
    if (seen.size > 0) closure.set(parent, [...seen]);
  }
  return closure;
}
