import type { DriverQuery, DriverResult } from '../../database/driver.js';
import type { SerializedSqliteError } from './sqlite-wasm-error.js';
import type { EngineOptions, SqliteWasmStorage } from './wasm-engine.js';

/** A request from the driver to its worker; `id` pairs it with the reply. */
export type WorkerRequest =
  | { readonly id: number; readonly type: 'open'; readonly options: EngineOptions }
  | { readonly id: number; readonly type: 'query'; readonly query: DriverQuery }
  | { readonly id: number; readonly type: 'close' };

/** The worker's answer to one request. */
export type WorkerReply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly result?: DriverResult;
      readonly storage?: SqliteWasmStorage;
    }
  | {
      readonly id: number;
      readonly ok: false;
      readonly error: SerializedSqliteError | { readonly message: string };
    };
