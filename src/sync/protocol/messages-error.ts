import type { z } from 'zod';
import { entityKind } from '../../entity.js';
import { SyncProtocolError } from '../../errors.js';

/**
 * Why a sync message or a shape filter was refused. The same strings travel as the `code` of a
 * server `error` message, so a client can tell what went wrong without parsing prose.
 *
 * - `malformed_json`: not JSON (or not UTF-8)
 * - `too_large`: over a limit (bytes, nesting, shapes, batches, changes per batch, filter size)
 * - `version_mismatch`: a protocol version `v` other than `PROTOCOL_VERSION`
 * - `unknown_type`: a `type` this side does not receive
 * - `invalid_message`: the right type, but missing, extra or wrongly typed fields
 * - `invalid_filter`: a shape filter that is not a valid tree for its table
 * - `unknown_table`, `unknown_column`: a name the schema does not have
 * - `forbidden`: a table the read rules do not let this user read (a shape filter's subquery)
 *
 * @example
 *   if (e instanceof SyncMessageError && e.code === 'version_mismatch') promptToUpdate();
 */
export type ProtocolErrorCode =
  | 'malformed_json'
  | 'too_large'
  | 'version_mismatch'
  | 'unknown_type'
  | 'invalid_message'
  | 'invalid_filter'
  | 'unknown_table'
  | 'unknown_column'
  | 'forbidden';

/**
 * A `SyncProtocolError` that also says which rule was broken (`code`) and where (`path`, such as
 * `batches[0].changes[2].op`, when one field is to blame). Its message never repeats the payload,
 * only the names and limits involved, so it is safe to log and to send back as an `error` message.
 *
 * @example
 *   try { parseClientMessage(raw); }
 *   catch (e) { if (e instanceof SyncMessageError) socket.send(JSON.stringify({ type: 'error', v: 1, code: e.code, message: e.message, fatal: false })); }
 */
export class SyncMessageError extends SyncProtocolError {
  static override readonly [entityKind]: string = 'SyncMessageError';
  readonly code: ProtocolErrorCode;
  readonly path: string | undefined;
  constructor(code: ProtocolErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.path = options?.path;
  }
}

const MAX_SHOWN = 40;

/**
 * A short, printable rendering of a name or value taken from a message: quoted, cut to 40
 * characters, so that an error about a huge field never echoes it whole.
 *
 * @example
 *   shown('x'.repeat(1000)); // '"xxxx…" (1000 characters)'
 */
export function shown(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > MAX_SHOWN
      ? `${JSON.stringify(value.slice(0, MAX_SHOWN))}… (${value.length} characters)`
      : JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return Array.isArray(value) ? 'an array' : `a value of type ${typeof value}`;
}

/**
 * A zod issue path as it reads in JavaScript: `batches[0].changes[2].op`; `(message)` for the
 * root. Long keys (record keys come from the payload) are cut short.
 *
 * @example
 *   formatPath(['batches', 0, 'changes']); // 'batches[0].changes'
 */
export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const key = String(part);
      const safe = /^[A-Za-z_$][\w$]*$/.test(key) && key.length <= MAX_SHOWN;
      out += safe ? (out ? `.${key}` : key) : `[${shown(key)}]`;
    }
  }
  return out || '(message)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      // zod does not keep the input on the issue; its message names what it received.
      return issue.message.endsWith('received undefined')
        ? `missing (expected ${issue.expected})`
        : `expected ${issue.expected}, ${issue.message.replace(/^.*?(received .*)$/, '$1')}`;
    case 'unrecognized_keys': {
      const keys = issue.keys.slice(0, 5).map(shown).join(', ');
      const more = issue.keys.length > 5 ? ` and ${issue.keys.length - 5} more` : '';
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}${more}`;
    }
    case 'invalid_union': {
      // zod reports an unknown discriminator as a union issue with the accepted values.
      const { note, options, discriminator } = issue as {
        note?: string;
        options?: unknown[];
        discriminator?: string;
      };
      if (note === 'No matching discriminator' && Array.isArray(options)) {
        const what = discriminator === 'op' ? 'filter operator' : `"${discriminator}" value`;
        return `unknown ${what}; expected one of ${options.map((o) => String(o)).join(', ')}`;
      }
      return issue.message;
    }
    default:
      return issue.message;
  }
}

/**
 * Turns zod's issues into one sentence per issue, `path: what was expected`, at most five, for
 * the message of a `SyncMessageError`. `prefix` is put before every path (`shapes[0].where`).
 *
 * @example
 *   formatIssues(result.error.issues); // 'batches[0].mutationId: missing (expected number)'
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix = ''): string {
  const parts = issues
    .slice(0, 5)
    .map((issue) => `${formatPath(issue.path, prefix)}: ${describeIssue(issue)}`);
  if (issues.length > 5) parts.push(`and ${issues.length - 5} more problems`);
  return parts.join('; ');
}
