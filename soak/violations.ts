/**
 * What the checker can find wrong in a run, by kind (the summary counts them by kind).
 * - `not-converged`: once faults stopped, a client was not online, flushed and caught up in time.
 * - `replica-differs`: a client's rows differ from the server's (a row or a column).
 * - `lost-write`: a write the server applied (or a backend made) is not on the server, and no
 *   write stamped later overwrote or deleted it.
 * - `lost-delete`: a row deleted by an applied delete exists, with no insert stamped later.
 * - `unexplained-rejection`: a batch rejected for a reason no rule or constraint of the schema explains.
 * - `client-error`: a client's `error` event other than a dropped connection.
 * - `unhandled-rejection`: an unhandled rejection or uncaught exception in any process.
 * - `server-error`: the server logged at level error.
 * - `memory`: the server's heap did not come back near its start.
 * - `harness`: the run itself failed (a process would not start, a wait timed out).
 */

/**
 * The kinds of violation, in the order the summary lists them.
 *
 * @example
 *   for (const kind of VIOLATION_KINDS) console.log(kind, counts[kind] ?? 0);
 */
export const VIOLATION_KINDS = [
  'not-converged',
  'replica-differs',
  'lost-write',
  'lost-delete',
  'unexplained-rejection',
  'client-error',
  'unhandled-rejection',
  'server-error',
  'memory',
  'harness',
] as const;

/**
 * One kind of violation.
 *
 * @example
 *   const kind: ViolationKind = 'lost-write';
 */
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

/**
 * One thing found wrong, with what it is about (a table and key when it concerns a row).
 *
 * @example
 *   { kind: 'lost-write', message: 'items …0003.title: server has "a", applied write at 1767… wrote "b"' }
 */
export interface Violation {
  readonly kind: ViolationKind;
  readonly message: string;
}
