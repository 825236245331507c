/**
 * The history check: the server's final rows against the model of what it must hold
 * (test/support/sync-model.ts), built from every change the server applied as the harness
 * recorded them: each client batch acknowledged `applied` (its changes as the push frame carried
 * them, with the batch's stamp) and each backend write that committed (what capture logged for
 * it, with PostgreSQL's stamp), in the order the server's log ticked them. A value or row the model
 * expects and the server lacks is a lost write; a row the server has and the model says is
 * deleted is a lost delete.
 */
import type { AnyTable } from '../src/schema/table.js';
import { encodeRow, type JsonRow } from '../src/sync/protocol/value-codec.js';
import { decodeLogRow } from '../src/sync/server/log-values.js';
import { compareRows, formatDifferences, type ModelChange, SyncModel } from '../test/support/sync-model.js';
import type { Dump } from './check-replicas.js';
import type { History } from './history.js';
import type { SoakSchema } from './schema.js';
import type { Violation } from './violations.js';
import type { LoggedChange } from './writes.js';

function encodeLogged(table: AnyTable, values: Record<string, unknown> | undefined): JsonRow | undefined {
  return values ? encodeRow(table, decodeLogRow(table, values)) : undefined;
}

/**
 * Logged changes as model changes (a key change: a delete and an insert): a backend write's, or a
 * mutation's server run's (`asMade`: written whatever the row's stamps).
 */
function loggedChanges(
  s: SoakSchema,
  source: string,
  logged: readonly LoggedChange[],
  asMade = false,
): ModelChange[] {
  const out: ModelChange[] = [];
  for (const change of logged) {
    const table = s.tables.find((t) => t.$name === change.table)!;
    const values = encodeLogged(table, change.values);
    const pk = change.pk as JsonRow;
    if (change.oldPk) {
      out.push({
        table: change.table,
        op: 'delete',
        pk: change.oldPk as JsonRow,
        hlc: change.hlc,
        source,
        asMade,
      });
      out.push({ table: change.table, op: 'insert', pk, values, hlc: change.hlc, source, asMade });
      continue;
    }
    const op = change.op === 'I' ? 'insert' : change.op === 'U' ? 'update' : 'delete';
    out.push({
      table: change.table,
      op,
      pk,
      values: op === 'delete' ? undefined : values,
      hlc: change.hlc,
      source,
      asMade,
    });
  }
  return out;
}

/** A batch or backend write with its place in the order: `key` (a tick or a place between two). */
interface Placed {
  readonly key: number;
  readonly i: number;
  /** A batch that logged nothing: the last tick its transaction's first statement saw. */
  readonly began: number | undefined;
  readonly changes: ModelChange[];
}

/** Every row of the model that exists, with its values: what a change that logs nothing leaves alone. */
function liveRows(model: SyncModel): string {
  return JSON.stringify(model.tableList.map((t) => model.rows(t.$name).map((row) => row.values)));
}

/** Whether `part`, applied after `before`, would change no row that exists (so log nothing). */
function changesNothing(s: SoakSchema, before: readonly Placed[], part: Placed): boolean {
  const model = new SyncModel([...s.tables]);
  for (const change of before.flatMap((p) => p.changes)) model.apply(change);
  const rows = liveRows(model);
  for (const change of part.changes) model.apply(change);
  return liveRows(model) === rows;
}

/**
 * Moves each batch that logged nothing to the latest point of its window (after the last tick its
 * first statement saw, up to its place) where it changes nothing, as its empty log says: a row it
 * found missing was not locked, so an insert of it committed before the batch's last statement
 * (whose snapshot gave the place) may have come after the batch's read. Where no point of the
 * window fits, the batch stays at its place and the check reports what differs.
 */
function placeUnlogged(s: SoakSchema, placed: Placed[]): Placed[] {
  const order = [...placed];
  for (const part of placed) {
    if (part.began === undefined) continue;
    const at = order.indexOf(part);
    const rest = order.filter((p) => p !== part);
    let earliest = rest.findIndex((p) => p.key > part.began!);
    if (earliest < 0) earliest = rest.length;
    if (earliest >= at || changesNothing(s, rest.slice(0, at), part)) continue;
    for (let point = at - 1; point >= earliest; point--) {
      if (!changesNothing(s, rest.slice(0, point), part)) continue;
      rest.splice(point, 0, part);
      order.splice(0, order.length, ...rest);
      break;
    }
  }
  return order;
}

/**
 * Every applied change of the history, in the order the server applied them: by the first tick
 * of their changes in the server's log, or for a batch none of whose changes was logged, by its
 * place between the ticks (log-order.ts), moved back within its window where it would have
 * changed something there (`placeUnlogged`); one the log order lacks altogether goes after
 * everything the harness heard of before it.
 *
 * @example
 *   for (const change of appliedChanges(s, history)) model.apply(change);
 */
export function appliedChanges(s: SoakSchema, history: History): ModelChange[] {
  const parts: {
    heard: number;
    tick: number | undefined;
    began?: number | undefined;
    changes: ModelChange[];
  }[] = [];
  for (const batch of history.batches.values()) {
    if (batch.status !== 'applied') continue;
    const key = `${batch.clientId}:${batch.mutationId}`;
    const source = `client ${batch.client} #${batch.mutationId}`;
    parts.push({
      heard: batch.order ?? Number.MAX_SAFE_INTEGER,
      tick: history.ticks.batch.get(key),
      began: history.ticks.began.get(key),
      changes: batch.mutation
        ? loggedChanges(s, `${source} (${batch.mutation})`, history.mutations.get(key) ?? [], true)
        : batch.changes.map((c) => ({
            table: c.table,
            op: c.op,
            pk: c.pk as JsonRow,
            values: c.values as JsonRow | undefined,
            hlc: c.hlc,
            source: `client ${batch.client} #${batch.mutationId}`,
          })),
    });
  }
  for (const write of history.backend) {
    const txid = write.changes[0]?.txid;
    parts.push({
      heard: write.order,
      tick: txid === undefined ? undefined : history.ticks.tx.get(txid),
      changes: loggedChanges(s, `backend #${write.stepId}`, write.changes),
    });
  }
  parts.sort((a, b) => a.heard - b.heard);
  let last = 0;
  const keyed: Placed[] = parts.map((part, i) => {
    if (part.tick !== undefined) last = Math.max(last, part.tick);
    return { key: part.tick ?? last + 0.5, i, began: part.began, changes: part.changes };
  });
  keyed.sort((a, b) => a.key - b.key || a.i - b.i);
  return placeUnlogged(s, keyed).flatMap((p) => p.changes);
}

/**
 * Compares the server's final rows with the model of the history; one violation per differing
 * row (at most `limit`, then one that counts the rest). The model's anomalies (a child written
 * without its parent, which the server must have refused) are returned as notes, not violations:
 * the order the harness heard things in is only close to the server's.
 *
 * @example
 *   const { violations, notes } = checkHistory(s, history, serverDump);
 */
export function checkHistory(
  s: SoakSchema,
  history: History,
  server: Dump,
  limit = 8,
): { violations: Violation[]; notes: string[] } {
  const model = new SyncModel([...s.tables]);
  for (const change of appliedChanges(s, history)) model.apply(change);
  const actual: Record<string, JsonRow[]> = {};
  for (const table of s.tables) {
    actual[table.$name] = (server[table.$name] ?? []).map((row) =>
      encodeRow(table, Object.fromEntries(table.$columnList.map((c) => [c.name, row[c.key]]))),
    );
  }
  const diffs = compareRows(model, actual);
  const byRow = new Map<string, typeof diffs>();
  for (const d of diffs) {
    const key = `${d.table} ${d.key}`;
    byRow.set(key, [...(byRow.get(key) ?? []), d]);
  }
  const violations: Violation[] = [];
  for (const rowDiffs of [...byRow.values()].slice(0, limit)) {
    const kind = rowDiffs[0].expected === 'missing' ? 'lost-delete' : 'lost-write';
    violations.push({ kind, message: formatDifferences(rowDiffs, model) });
  }
  if (byRow.size > limit) {
    violations.push({ kind: 'lost-write', message: `${byRow.size - limit} more rows differ from the model` });
  }
  return { violations, notes: model.anomalies.slice(0, 10) };
}
