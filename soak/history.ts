/**
 * What happened in one soak run, as the checker reads it: each step's outcome, every batch a
 * client pushed (with its stamp) and the server's answer to it, every change a backend write
 * logged (with PostgreSQL's stamp), rejections, errors, unhandled rejections, faults by kind,
 * flushes and the time convergence took.
 */
import type { LogOrder } from './log-order.js';
import type { FaultKind, Step } from './plan.js';
import type { LoggedChange } from './writes.js';

/**
 * One change as a push frame carried it (values in the sync protocol's JSON forms).
 *
 * @example
 *   { table: 'items', op: 'update', pk: { id }, values: { title: 'x' }, hlc: '1767…-00000-…' }
 */
export interface PushedChange {
  readonly table: string;
  readonly op: 'insert' | 'update' | 'delete';
  readonly pk: Record<string, unknown>;
  readonly values?: Record<string, unknown>;
  readonly hlc: string;
}

/**
 * A batch a client pushed, and the server's last answer to it (none yet: `undefined`).
 *
 * @example
 *   history.batches.get(`${clientId}:${mutationId}`)?.status; // 'applied'
 */
export interface PushedBatch {
  readonly client: number;
  readonly clientId: string;
  readonly mutationId: number;
  readonly changes: readonly PushedChange[];
  /** The mutator a mutation batch ran (it carries no changes: see `History.mutations`). */
  readonly mutation?: string;
  status?: 'applied' | 'rejected';
  reason?: string;
  /** When the harness first heard it was applied (its place in `History.order`). */
  order?: number;
}

/**
 * How a step ended: `ok`, `failed` (with why: a local constraint, the server down), `skipped`
 * (it could not run, such as `server.db` while the server is down), `indeterminate` (the process
 * was killed while it ran).
 *
 * @example
 *   { step, outcome: 'failed', detail: 'ConstraintError: foreign key constraint failed' }
 */
export interface StepRecord {
  readonly step: Step;
  outcome: 'ok' | 'failed' | 'skipped' | 'indeterminate';
  detail?: string;
}

/**
 * The record of one run.
 *
 * @example
 *   const history = new History();
 *   history.pushed(0, { clientId, batches });
 */
export class History {
  readonly steps: StepRecord[] = [];
  readonly batches = new Map<string, PushedBatch>();
  /** Backend writes that committed, with what capture logged for them. */
  readonly backend: { stepId: number; changes: readonly LoggedChange[]; order: number }[] = [];
  /**
   * What capture logged for each mutation's server run (`clientId:mutationId`), as the server
   * reported it: the last report of a mutation is the run that committed, if any did.
   */
  readonly mutations = new Map<string, readonly LoggedChange[]>();
  readonly rejections: { client: number; mutationId: number; reason: string }[] = [];
  readonly errors: { who: string; message: string }[] = [];
  readonly unhandled: { who: string; message: string }[] = [];
  readonly faults = new Map<FaultKind, number>();
  readonly skippedFaults = new Map<FaultKind, string>();
  flushes = { ok: 0, failed: 0 };
  ops = 0;
  convergeMs: number | undefined;
  private sequence = 0;

  /**
   * The next place in the order the server applied things in, as far as the harness can tell: a
   * client batch when its applied ack arrives, a backend write when it commits. Only cascades
   * make that order matter to the model.
   */
  order(): number {
    return ++this.sequence;
  }

  /** Notes a backend write that committed, with what capture logged for it. */
  backendWrite(stepId: number, changes: readonly LoggedChange[]): void {
    this.backend.push({ stepId, changes, order: this.order() });
  }

  /** Notes a push frame a client sent (a batch sent twice keeps its first record and answer). */
  pushed(
    client: number,
    data: {
      clientId: string;
      batches: { mutationId: number; changes: PushedChange[]; mutation?: { name: string } }[];
    },
  ) {
    for (const batch of data.batches) {
      const key = `${data.clientId}:${batch.mutationId}`;
      if (!this.batches.has(key)) {
        this.batches.set(key, {
          client,
          clientId: data.clientId,
          mutationId: batch.mutationId,
          changes: batch.changes,
          mutation: batch.mutation?.name,
        });
      }
    }
  }

  /** Notes what a mutation's server run logged (a later run of the same mutation replaces it). */
  mutationRan(clientId: string, mutationId: number, changes: readonly LoggedChange[]): void {
    this.mutations.set(`${clientId}:${mutationId}`, changes);
  }

  /** Notes the server's answers (an ack) to a client's batches. */
  acked(data: {
    clientId: string;
    results: { mutationId: number; status: 'applied' | 'rejected'; reason?: string }[];
  }) {
    for (const result of data.results) {
      const batch = this.batches.get(`${data.clientId}:${result.mutationId}`);
      if (!batch) continue;
      batch.status = result.status;
      batch.reason = result.reason;
      if (result.status === 'applied') batch.order ??= this.order();
    }
  }

  /**
   * The first tick of each batch (`clientId:mutationId`) and direct transaction in the server's
   * log; for a batch that logged nothing, its place between two ticks, and in `began` the last
   * tick its transaction's first statement saw.
   */
  readonly ticks = {
    batch: new Map<string, number>(),
    tx: new Map<string, number>(),
    began: new Map<string, number>(),
  };

  /** Merges ticks read from the server's log (log-order.ts; the earliest seen wins). */
  noteLogOrder(order: LogOrder): void {
    for (const [key, tick] of Object.entries(order.batch)) {
      this.ticks.batch.set(key, Math.min(this.ticks.batch.get(key) ?? tick, tick));
    }
    for (const [key, tick] of Object.entries(order.tx)) {
      this.ticks.tx.set(key, Math.min(this.ticks.tx.get(key) ?? tick, tick));
    }
    for (const [key, tick] of Object.entries(order.began)) {
      this.ticks.began.set(key, Math.min(this.ticks.began.get(key) ?? tick, tick));
    }
  }

  /** Counts a fault injected. */
  fault(kind: FaultKind): void {
    this.faults.set(kind, (this.faults.get(kind) ?? 0) + 1);
  }
}
