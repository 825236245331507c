/**
 * The plan of one soak run: every write and fault, drawn from the seed before anything runs, so
 * that the same seed replays the same steps and a failing plan can be shrunk by leaving steps out.
 * Values are app values (bigint, Date, Uint8Array, json objects) by SQL column name; they cross to
 * the child processes with structured clone.
 */

import type { SoakMutation } from './mutators.js';

/**
 * The soak's two tables.
 *
 * @example
 *   const table: TableName = 'items';
 */
export type TableName = 'owners' | 'items';

/**
 * One row write inside a transaction: an insert (ON CONFLICT DO NOTHING), an update of some
 * columns, a delete, or a primary-key change (`rekey`: UPDATE ... SET id = newKey).
 *
 * @example
 *   const w: Write = { table: 'items', op: 'update', key: itemKey(3), values: { title: 'x', qty: 2n ** 60n } };
 */
export interface Write {
  readonly table: TableName;
  readonly op: 'insert' | 'update' | 'delete' | 'rekey';
  readonly key: string;
  readonly newKey?: string;
  readonly values?: Readonly<Record<string, unknown>>;
}

/**
 * Who makes a transaction: a client (`client` index), the server's own Database (`server-db`), or
 * another PostgreSQL connection with raw SQL (`raw-sql`, which can also TRUNCATE items).
 *
 * @example
 *   const by: Writer = 'raw-sql';
 */
export type Writer = 'client' | 'server-db' | 'raw-sql';

/**
 * The faults the soak injects.
 * - `stop-start`: a client's `stop()`, a pause, `start()`.
 * - `kill-client`: SIGKILL of a client process during a write, then a new process on its file.
 * - `kill-server`: SIGKILL of the server process, a pause, a new server process on the database.
 * - `cut`: the proxy cuts a client's connection mid-frame (after a few bytes either way).
 * - `stall`: the proxy stops forwarding a client's bytes for a while, then goes on.
 * - `delay`: the proxy delays every chunk of a client's connection for a while.
 * - `terminate`: `pg_terminate_backend` of every session of the server (PostgreSQL only).
 * - `skew`: a client process restarted with its clock 30 s ahead or behind (libfaketime).
 * - `away`: a client goes offline, the server prunes its whole change log, the client comes back.
 *
 * @example
 *   const kinds: FaultKind[] = ['cut', 'kill-server'];
 */
export type FaultKind =
  | 'stop-start'
  | 'kill-client'
  | 'kill-server'
  | 'cut'
  | 'stall'
  | 'delay'
  | 'terminate'
  | 'skew'
  | 'away';

/**
 * Every fault kind, in the order the summary lists them.
 *
 * @example
 *   const faultKinds = FAULT_KINDS.filter((k) => k !== 'terminate');
 */
export const FAULT_KINDS: readonly FaultKind[] = [
  'stop-start',
  'kill-client',
  'kill-server',
  'cut',
  'stall',
  'delay',
  'terminate',
  'skew',
  'away',
];

/**
 * The kinds of operation the plan draws from (`--ops-mix`).
 *
 * @example
 *   const mix: OpKind[] = ['insert', 'update', 'delete'];
 */
export type OpKind =
  | 'insert'
  | 'update'
  | 'update-multi'
  | 'delete'
  | 'transaction'
  | 'rekey'
  | 'server-db'
  | 'raw-sql'
  | 'truncate'
  | 'mutator';

/**
 * Every operation kind.
 *
 * @example
 *   const opKinds = OP_KINDS.filter((k) => k !== 'truncate');
 */
export const OP_KINDS: readonly OpKind[] = [
  'insert',
  'update',
  'update-multi',
  'delete',
  'transaction',
  'rekey',
  'server-db',
  'raw-sql',
  'truncate',
  'mutator',
];

/**
 * One step of a plan. `id` is its place in the full plan (kept when a shrunk plan leaves steps out).
 * - `write`: a transaction of `writes` by `by` (`client` says which client); `truncate` empties items;
 *   `mutation` makes a client run a mutator instead (soak/mutators.ts), with no writes.
 * - `fault`: one fault on `client` (when it concerns one), lasting about `ms`.
 * - `flush`: the client's `flush()`, not awaited by the plan; its outcome is recorded.
 * - `pause`: nothing happens for `ms`.
 *
 * @example
 *   const step: Step = { id: 7, kind: 'write', by: 'client', client: 1, writes: [w] };
 */
export type Step =
  | {
      readonly id: number;
      readonly kind: 'write';
      readonly by: Writer;
      readonly client?: number;
      readonly writes: readonly Write[];
      readonly truncate?: boolean;
      readonly mutation?: SoakMutation;
    }
  | {
      readonly id: number;
      readonly kind: 'fault';
      readonly fault: FaultKind;
      readonly client?: number;
      readonly ms: number;
      /** kill-client: the write the process is killed in, and how long after it was sent. */
      readonly writes?: readonly Write[];
      readonly killAfterMs?: number;
      /** cut: bytes let through before the cut; `toServer` says which way. */
      readonly bytes?: number;
      readonly toServer?: boolean;
      /** skew: the offset of the client's clock. */
      readonly skewMs?: number;
    }
  | { readonly id: number; readonly kind: 'flush'; readonly client: number }
  | { readonly id: number; readonly kind: 'pause'; readonly ms: number };

/**
 * A whole plan: the steps, and the keys the run writes (shared with the checker).
 *
 * @example
 *   const plan = makePlan(options);
 *   console.log(plan.steps.length);
 */
export interface Plan {
  readonly seed: number;
  readonly steps: readonly Step[];
}

/**
 * The fixed uuid of owner `i` (a small key space, so that writes collide).
 *
 * @example
 *   ownerKey(0); // '00000000-0000-4000-8000-000000000000'
 */
export function ownerKey(i: number): string {
  return `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

/**
 * The fixed uuid of item `i`.
 *
 * @example
 *   itemKey(3); // '10000000-0000-4000-8000-000000000003'
 */
export function itemKey(i: number): string {
  return `10000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

/**
 * One line describing a step, for progress output and the printed history.
 *
 * @example
 *   describeStep(step); // '#12 client 2: update items …0003 {title,qty}'
 */
export function describeStep(step: Step): string {
  const short = (key: string) => `…${key.slice(-4)}`;
  switch (step.kind) {
    case 'write': {
      const who = step.by === 'client' ? `client ${step.client}` : step.by;
      if (step.truncate) return `#${step.id} ${who}: TRUNCATE items`;
      if (step.mutation)
        return `#${step.id} ${who}: mutate.${step.mutation.name}(${JSON.stringify(step.mutation.args)})`;
      const parts = step.writes.map((w) => {
        const cols = w.values ? ` {${Object.keys(w.values).join(',')}}` : '';
        const to = w.newKey ? ` -> ${short(w.newKey)}` : '';
        return `${w.op} ${w.table} ${short(w.key)}${to}${w.op === 'update' ? cols : ''}`;
      });
      return `#${step.id} ${who}: ${parts.join('; ')}`;
    }
    case 'fault': {
      const on = step.client === undefined ? '' : ` client ${step.client}`;
      const extra =
        step.fault === 'skew'
          ? ` ${step.skewMs! > 0 ? '+' : ''}${step.skewMs! / 1000}s`
          : step.fault === 'cut'
            ? ` after ${step.bytes} bytes ${step.toServer ? 'to server' : 'to client'}`
            : ` ${step.ms} ms`;
      return `#${step.id} fault ${step.fault}${on}${extra}`;
    }
    case 'flush':
      return `#${step.id} client ${step.client}: flush()`;
    case 'pause':
      return `#${step.id} pause ${step.ms} ms`;
  }
}
