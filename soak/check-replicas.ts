/**
 * The convergence check: every replica holds exactly the server's rows, every column equal.
 */
import { canonRow } from './canon.js';
import type { SoakSchema } from './schema.js';
import type { Violation } from './violations.js';

/**
 * Tables as the child processes dump them: table name → rows (app values, TypeScript keys).
 *
 * @example
 *   const dump: Dump = await client.call('dump', undefined, 10_000);
 */
export type Dump = Record<string, Record<string, unknown>[]>;

/** Rows of each table by id, as comparable texts by SQL name. */
function index(s: SoakSchema, dump: Dump): Map<string, Map<string, Record<string, string>>> {
  const out = new Map<string, Map<string, Record<string, string>>>();
  for (const table of s.tables) {
    const rows = new Map<string, Record<string, string>>();
    for (const row of dump[table.$name] ?? []) rows.set(String(row.id), canonRow(table, row));
    out.set(table.$name, rows);
  }
  return out;
}

/**
 * Compares one client's dump with the server's; returns a `replica-differs` violation per
 * differing row (at most `limit`, then one that counts the rest).
 *
 * @example
 *   violations.push(...compareReplica(s, 'client 2', serverDump, clientDump));
 */
export function compareReplica(
  s: SoakSchema,
  who: string,
  server: Dump,
  client: Dump,
  limit = 5,
): Violation[] {
  const expected = index(s, server);
  const actual = index(s, client);
  const found: string[] = [];
  for (const table of s.tables) {
    const want = expected.get(table.$name)!;
    const got = actual.get(table.$name)!;
    for (const [id, row] of want) {
      const other = got.get(id);
      if (!other) {
        found.push(`${table.$name} ${id}: on the server, missing on ${who}`);
        continue;
      }
      const columns = Object.keys(row).filter((c) => row[c] !== other[c]);
      if (columns.length > 0) {
        found.push(
          `${table.$name} ${id}: ${columns.map((c) => `${c} server=${row[c]} ${who}=${other[c]}`).join(', ')}`,
        );
      }
    }
    for (const id of got.keys()) {
      if (!want.has(id)) found.push(`${table.$name} ${id}: on ${who}, not on the server`);
    }
  }
  const shown = found.slice(0, limit).map((message) => ({ kind: 'replica-differs' as const, message }));
  if (found.length > limit) {
    shown.push({ kind: 'replica-differs', message: `${who}: ${found.length - limit} more rows differ` });
  }
  return shown;
}
