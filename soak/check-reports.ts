/**
 * The checks of what the processes reported: rejected batches (explained only by the schema's
 * unique name and foreign key), client `error` events, unhandled rejections and uncaught
 * exceptions, and the server's error log lines. Some reports are what a fault is expected to
 * cause (a push that failed because PostgreSQL terminated the server's session, a remote row that
 * clashed with a pending local write on the unique name): those are notes, not violations.
 */
import type { History } from './history.js';
import type { Violation } from './violations.js';

/** Rejection reasons the soak schema explains: its unique name, its foreign key. */
const EXPLAINED_REJECTION = /unique constraint|foreign key constraint/i;

/**
 * Client errors a fault or a legitimate conflict explains: a server failure during a fault (the
 * client retries), a remote row that breaks the unique name or the foreign key against the
 * client's own pending writes (the client fetches it again, by design).
 */
const EXPECTED_CLIENT_ERROR =
  /^SyncServerError: .*\((server_error|push_failed)\)|^RowApplyError: .*(unique constraint|foreign key constraint)/;

/**
 * Server log errors that a terminated session or a killed process explains, and the designed
 * answer to a prune racing a client's catch-up (the connection fails, the client reconnects and
 * gets a snapshot; docs/sync-internals.md "Pruning the change log").
 */
const EXPECTED_SERVER_ERROR =
  /terminating connection|Connection terminated|not queryable|ECONNRESET|connection error|has no changes after position|were pruned from the change log/i;

function counted(items: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].map(([item, n]) => (n > 1 ? `${item} (×${n})` : item));
}

/**
 * Violations and notes from what the processes reported during a run.
 *
 * @example
 *   const { violations, notes } = checkReports(history, cluster.serverErrors);
 */
export function checkReports(
  history: History,
  serverErrors: readonly string[],
): { violations: Violation[]; notes: string[] } {
  const violations: Violation[] = [];
  const notes: string[] = [];
  for (const r of history.rejections) {
    const text = `client ${r.client} mutation ${r.mutationId} rejected: ${r.reason}`;
    if (EXPLAINED_REJECTION.test(r.reason)) notes.push(text);
    else violations.push({ kind: 'unexplained-rejection', message: text });
  }
  const errors = counted(history.errors.map((e) => `${e.who}: ${e.message.slice(0, 300)}`));
  for (const line of errors) {
    const message = line.replace(/^[^:]*: /, '');
    if (line.startsWith('harness')) violations.push({ kind: 'harness', message: line });
    else if (line.startsWith('supervisor')) notes.push(line);
    else if (EXPECTED_CLIENT_ERROR.test(message)) notes.push(line);
    else violations.push({ kind: 'client-error', message: line });
  }
  for (const u of history.unhandled.slice(0, 5)) {
    violations.push({ kind: 'unhandled-rejection', message: `${u.who}: ${u.message.slice(0, 3000)}` });
  }
  const server = counted(serverErrors.map((line) => line.replace(/"time":"[^"]*",/, '').slice(0, 400)));
  for (const line of server) {
    if (EXPECTED_SERVER_ERROR.test(line)) notes.push(`server: ${line}`);
    else violations.push({ kind: 'server-error', message: line });
  }
  return { violations, notes };
}
