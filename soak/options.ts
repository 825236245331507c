/**
 * The soak's options, as `npm run soak -- ...` takes them (soak/run.ts parses them), and their
 * defaults: a few seeds of 3 clients and 120 operations on PGlite, every fault kind.
 */
import type { DatabaseKind } from './deployment.js';
import { FAULT_KINDS, type FaultKind, OP_KINDS, type OpKind } from './plan.js';
import type { SchemaVariant } from './schema.js';

/**
 * What one soak invocation runs.
 *
 * @example
 *   const options: SoakOptions = { ...DEFAULT_OPTIONS, seeds: [1, 2, 3], db: 'postgres' };
 */
export interface SoakOptions {
  readonly seeds: readonly number[];
  readonly clients: number;
  /** Write transactions per seed (over every client and the backend). */
  readonly ops: number;
  readonly db: DatabaseKind;
  readonly variant: SchemaVariant;
  readonly opKinds: readonly OpKind[];
  readonly faultKinds: readonly FaultKind[];
  /** About one fault per this many operations; 0 for none. */
  readonly faultEvery: number;
  /** Seeds run at once, each in a process of its own (1: in this process). */
  readonly parallel: number;
  /** How long convergence may take once faults stopped. */
  readonly convergeTimeoutMs: number;
  /** Shrink a failing seed's plan (re-runs, bounded by `shrinkRuns`). */
  readonly shrink: boolean;
  readonly shrinkRuns: number;
  /** Progress every few seconds (false: only the summary). */
  readonly progress: boolean;
  /** How much the server's heap may end above its start (bytes). */
  readonly memorySlackBytes: number;
}

/**
 * The defaults.
 *
 * @example
 *   const options = { ...DEFAULT_OPTIONS, seeds: [7] };
 */
export const DEFAULT_OPTIONS: SoakOptions = {
  seeds: [1],
  clients: 3,
  ops: 120,
  db: process.env.DATABASE_URL ? 'postgres' : 'pglite',
  variant: 'full',
  opKinds: OP_KINDS,
  faultKinds: FAULT_KINDS,
  faultEvery: 8,
  parallel: 1,
  convergeTimeoutMs: 60_000,
  shrink: true,
  shrinkRuns: 6,
  progress: true,
  memorySlackBytes: 64 << 20,
};
