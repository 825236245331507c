import { InvalidValueError } from '../errors.js';

/**
 * Checks that an app value fits a logical column type, shared by every dialect's encoders so a
 * wrong value fails the same way everywhere, before anything reaches the database.
 */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : 'a Date';
  if (value instanceof Uint8Array) return 'a Uint8Array';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return `the ${typeof value} ${String(value)}`;
  }
  return `a value of type ${typeof value}`;
}

export function invalid(expected: string, value: unknown): never {
  throw new InvalidValueError(`expected ${expected}, got ${describe(value)}`);
}

export function checkString(value: unknown): string {
  return typeof value === 'string' ? value : invalid('a string', value);
}

/**
 * By char code (any UTF-16 unit, so no range check per char): 1 for a digit or a lower-case hex
 * letter, 2 for an upper-case one, 4 for anything else.
 */
const HEX_DIGITS = new Uint8Array(65536).fill(4);
for (let c = 48; c <= 57; c++) HEX_DIGITS[c] = 1;
for (let c = 97; c <= 102; c++) HEX_DIGITS[c] = 1;
for (let c = 65; c <= 70; c++) HEX_DIGITS[c] = 2;

/** The OR of the HEX_DIGITS classes of chars from..to-1. */
function hexClasses(value: string, from: number, to: number): number {
  let classes = 0;
  for (let i = from; i < to; i++) classes |= HEX_DIGITS[value.charCodeAt(i)]!;
  return classes;
}

/**
 * 0 unless `value` is 8-4-4-4-12 hex digits; then 1 when they are all lower case, else 3. A table
 * lookup per char code and one loop per group, as this runs for every uuid written, synced or read
 * back (twice per row of a snapshot), and a uuid already in lower case is then returned as it is.
 */
function uuidForm(value: string): number {
  if (value.length !== 36) return 0;
  if (value.charCodeAt(8) !== 45 || value.charCodeAt(13) !== 45) return 0;
  if (value.charCodeAt(18) !== 45 || value.charCodeAt(23) !== 45) return 0;
  const classes =
    hexClasses(value, 0, 8) |
    hexClasses(value, 9, 13) |
    hexClasses(value, 14, 18) |
    hexClasses(value, 19, 23) |
    hexClasses(value, 24, 36);
  if (classes & 4) return 0;
  return classes === 1 ? 1 : 3;
}

export function checkUuid(value: unknown): string {
  if (typeof value === 'string') {
    const form = uuidForm(value);
    if (form === 1) return value;
    if (form !== 0) return value.toLowerCase();
  }
  return invalid('a UUID string (8-4-4-4-12 hex digits)', value);
}

export function checkInteger(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= -2147483648 && value <= 2147483647)
    return value;
  return invalid('a whole number between -2^31 and 2^31-1 (use bigint() for larger)', value);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function checkBigint(value: unknown): bigint {
  let big: bigint | undefined;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
  if (big === undefined || big < INT64_MIN || big > INT64_MAX) return invalid('a 64-bit bigint', value);
  return big;
}

export function checkNumber(value: unknown): number {
  return typeof value === 'number' && !Number.isNaN(value) ? value : invalid('a number', value);
}

export function checkBoolean(value: unknown): boolean {
  return typeof value === 'boolean' ? value : invalid('a boolean', value);
}

export function checkDate(value: unknown): Date {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value;
  return invalid('a valid Date', value);
}

export function checkBytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : invalid('a Uint8Array', value);
}

const NUMERIC = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export function checkNumeric(value: unknown): string {
  if (typeof value === 'string' && NUMERIC.test(value)) return value;
  if (typeof value === 'bigint' || (typeof value === 'number' && Number.isFinite(value)))
    return String(value);
  return invalid('a decimal number as a string', value);
}

export function checkJson(value: unknown): string {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    return invalid('a JSON value', value);
  }
  try {
    return JSON.stringify(value);
  } catch (error) {
    return invalid(`a JSON value (${(error as Error).message})`, value);
  }
}

export function checkEnum(values: readonly string[]): (value: unknown) => string {
  const allowed = new Set(values);
  return (value) =>
    typeof value === 'string' && allowed.has(value)
      ? value
      : invalid(`one of ${values.map((v) => `'${v}'`).join(', ')}`, value);
}

/** A plain Uint8Array view of the bytes a driver returned (Buffers become plain views). */
export function toUint8Array(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) {
    return value.constructor === Uint8Array
      ? value
      : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return invalid('bytes from the database', value);
}
