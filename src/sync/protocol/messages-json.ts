import { z } from 'zod';
import { utf8Length } from './message-size.js';
import { SyncMessageError } from './messages-error.js';
import type { JsonRow, JsonValue } from './value-codec.js';

/**
 * Accepts any value but `undefined`. Messages come from `JSON.parse`, so whatever is present is
 * already JSON; walking every row value again with `z.json()` would only cost time, and would
 * report a missing value as six failed union branches instead of one "missing".
 *
 * @example
 *   z.strictObject({ value: JsonValueSchema }).parse({ value: [1, 'a'] });
 */
export const JsonValueSchema: z.ZodType<JsonValue> = z.custom<JsonValue>((value) => value !== undefined, {
  error: (issue) => (issue.input === undefined ? 'missing (expected a JSON value)' : 'expected a JSON value'),
});

/**
 * An object of column name → JSON value: a row, a primary key, or the changed columns of an update.
 * Column names are SQL names (`owner_id`, not `ownerId`), as in the change log.
 *
 * @example
 *   JsonRowSchema.parse({ id: 'a', owner_id: 'u1' });
 */
export const JsonRowSchema: z.ZodType<JsonRow> = z.custom<JsonRow>(isJsonRow, {
  error: (issue) => {
    const input = issue.input;
    if (input === null || typeof input !== 'object') {
      return `expected object, received ${input === null ? 'null' : typeof input}`;
    }
    if (Array.isArray(input)) return 'expected object, received array';
    return 'column names cannot be empty';
  },
});

/**
 * True when `value` is what `JsonRowSchema` accepts: an object (not an array) whose column names
 * are not empty. A plain loop: snapshot chunks carry thousands of rows, and `z.record` would copy
 * each one while validating it (a 100,000-row snapshot spent 200 ms there). Values need no check:
 * they came from `JSON.parse`, and the depth limit was checked before.
 *
 * @example
 *   isJsonRow({ id: 'a' }); // true
 *   isJsonRow(['a']); // false
 */
export function isJsonRow(value: unknown): value is JsonRow {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  for (const key in value) if (key.length === 0) return false;
  return true;
}

/**
 * The size limits `readJsonMessage` checks: bytes before `JSON.parse`, nesting after it.
 *
 * @example
 *   const limits: JsonLimits = { maxMessageBytes: 1 << 20, maxDepth: 64 };
 */
export interface JsonLimits {
  /** Largest message in UTF-8 bytes. */
  readonly maxMessageBytes: number;
  /** Deepest nesting of arrays and objects (the message object itself is depth 1). */
  readonly maxDepth: number;
}

/**
 * True when `value` nests arrays and objects deeper than `max` (a flat object is depth 1).
 * Iterative, so a hostile payload cannot overflow the stack, and it runs before anything that
 * recurses (zod) sees the value.
 *
 * @example
 *   nestedDeeperThan({ a: [[1]] }, 2); // true
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth > max) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads one message frame: checks its size, decodes UTF-8, parses JSON and checks nesting depth,
 * throwing `SyncMessageError` (`too_large`, `malformed_json`) before anything else looks at it.
 * Size is checked first, so an oversized frame is never parsed.
 *
 * @example
 *   const value = readJsonMessage(frame, { maxMessageBytes: 1 << 20, maxDepth: 64 });
 */
export function readJsonMessage(raw: string | Uint8Array, limits: JsonLimits): unknown {
  let text: string;
  if (typeof raw === 'string') {
    // Every UTF-16 unit is at least one UTF-8 byte and at most three: count only when unsure.
    if (raw.length > limits.maxMessageBytes) throw tooLarge(`at least ${raw.length}`, limits.maxMessageBytes);
    if (raw.length * 3 > limits.maxMessageBytes) {
      const bytes = utf8Length(raw);
      if (bytes > limits.maxMessageBytes) throw tooLarge(String(bytes), limits.maxMessageBytes);
    }
    text = raw;
  } else if (raw instanceof Uint8Array) {
    if (raw.byteLength > limits.maxMessageBytes)
      throw tooLarge(String(raw.byteLength), limits.maxMessageBytes);
    try {
      text = decoder.decode(raw);
    } catch (cause) {
      throw new SyncMessageError('malformed_json', 'message is not valid UTF-8 text; send JSON as UTF-8', {
        cause,
      });
    }
  } else {
    throw new SyncMessageError(
      'malformed_json',
      `message must be a string or a Uint8Array of UTF-8 JSON, got ${raw === null ? 'null' : typeof raw}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    // V8's message names the position, and quotes at most a few characters around it.
    const detail = cause instanceof SyntaxError ? `: ${cause.message.slice(0, 160)}` : '';
    throw new SyncMessageError('malformed_json', `message is not valid JSON${detail}`, { cause });
  }
  if (nestedDeeperThan(value, limits.maxDepth)) {
    throw new SyncMessageError(
      'too_large',
      `message nests arrays and objects deeper than ${limits.maxDepth} levels (the maxDepth limit)`,
    );
  }
  return value;
}

function tooLarge(bytes: string, max: number): SyncMessageError {
  return new SyncMessageError(
    'too_large',
    `message is ${bytes} bytes, over the limit of ${max} bytes (maxMessageBytes); split it into smaller messages`,
  );
}
