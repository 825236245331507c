import { z } from 'zod';

/**
 * A position in the server's change log (a "tick", docs/design.md section 4), as it travels: a
 * non-negative whole number written as a decimal string without leading zeros, at most 2^63 - 1.
 * A string, not a JSON number, because ticks live in a PostgreSQL `bigint` (node-postgres returns
 * those as strings) and JSON numbers silently lose precision past 2^53: a cursor must never round.
 * `'0'` is the position before the first change. Compare positions with `comparePositions`.
 *
 * @example
 *   const cursor: Position = '41';
 */
export type Position = string;

const POSITION = /^(0|[1-9][0-9]{0,18})$/;
const MAX_POSITION = '9223372036854775807';

/**
 * Orders two positions (canonical decimal strings): -1, 0 or 1. Canonical form means the longer
 * string is the larger number, and equal lengths compare digit by digit, so no BigInt is needed.
 *
 * @example
 *   comparePositions('9', '10'); // -1
 */
export function comparePositions(a: Position, b: Position): -1 | 0 | 1 {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

/**
 * Validates a `Position`: a decimal string of a whole number from 0 to 2^63 - 1, no sign, no
 * leading zeros, so each position has exactly one spelling.
 *
 * @example
 *   PositionSchema.parse('1024'); // '1024'
 */
export const PositionSchema: z.ZodType<Position> = z
  .string()
  .refine(
    isPosition,
    'expected a position: a whole number from 0 to 2^63 - 1 as a decimal string without leading zeros, like "41"',
  );

/**
 * True when `value` is a `Position` (`PositionSchema` accepts it).
 *
 * @example
 *   isPosition('41'); // true
 *   isPosition('041'); // false
 */
export function isPosition(value: unknown): value is Position {
  return typeof value === 'string' && POSITION.test(value) && comparePositions(value, MAX_POSITION) <= 0;
}
