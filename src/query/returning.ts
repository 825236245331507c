import type { AnyTable } from '../schema/table.js';
import type { SelectField } from '../sql/nodes.js';
import { partialFields, type Selection, sourceFields } from './selection.js';

/** The fields of `returning()`: every column of the table, or a chosen list. */
export function returningFields(
  table: AnyTable,
  selection: Selection | undefined,
  context: string,
): SelectField[] {
  return selection ? partialFields(selection, context) : sourceFields(table, false, false);
}
