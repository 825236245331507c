import type { DriverQuery, DriverResult } from '../../database/driver.js';
import type { SerializedSqliteError } from './sqlite-wasm-error.js';
import type { EngineOptions, SqliteWasmStorage } from './wasm-engine.js';

/**
 * What a tab asks of the database: a statement (inside the transaction `session` when given), a
 * connection held for one transaction, and its release. The same operations travel from a tab to
 * its worker, and from a worker that does not own the database to the one that does.
 */
export type DatabaseOperation =
  | { readonly type: 'query'; readonly query: DriverQuery; readonly session?: string }
  | { readonly type: 'acquire' }
  | { readonly type: 'release'; readonly session: string };

/** A request from the driver to its worker; `id` pairs it with the reply. */
export type WorkerRequest =
  | {
      readonly id: number;
      readonly type: 'open';
      readonly options: EngineOptions;
      /** Share the database with the other tabs of this origin that open the same name. */
      readonly share?: { readonly tab: string };
    }
  | ({ readonly id: number } & DatabaseOperation)
  | { readonly id: number; readonly type: 'close' };

/** The answer to one operation, as it crosses a worker or a tab boundary. */
export type OperationReply =
  | {
      readonly ok: true;
      readonly result?: DriverResult;
      readonly session?: string;
      readonly storage?: SqliteWasmStorage;
    }
  | { readonly ok: false; readonly error: SerializedSqliteError | { readonly message: string } };

/** The worker's answer to one request. */
export type WorkerReply = { readonly id: number } & OperationReply;

/**
 * Told by a shared worker to its tab unasked: this tab's worker now owns the database (`owner`),
 * or the owner changed, so commits of a tab that closed may have gone unannounced (`gap`).
 */
export interface WorkerEvent {
  readonly id: 0;
  readonly event: 'owner' | 'gap';
}
