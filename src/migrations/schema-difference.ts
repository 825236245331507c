/** The kinds of difference `verifySchema` reports between the live database and the declared schema. */
export type SchemaDifferenceKind =
  | 'missingTable'
  | 'extraTable'
  | 'missingColumn'
  | 'extraColumn'
  | 'type'
  | 'nullability'
  | 'default'
  | 'primaryKey'
  | 'missingIndex'
  | 'extraIndex'
  | 'index'
  | 'missingForeignKey'
  | 'extraForeignKey'
  /** A foreign key on the same columns that points elsewhere or has other ON DELETE / ON UPDATE actions. */
  | 'foreignKey';

/** One difference: where it is, what the schema declares and what the database has. */
export interface SchemaDifference {
  readonly kind: SchemaDifferenceKind;
  readonly table: string;
  /** The column, index or foreign key concerned, when the difference is below table level. */
  readonly name?: string;
  readonly expected?: string;
  readonly actual?: string;
  /** One line for people: "todos.done: type is TEXT, the schema declares INTEGER". */
  readonly message: string;
}
