/// <reference lib="webworker" />
import { OwnedDatabase, serializeError } from './owned-database.js';
import { SharedDatabase } from './shared-database.js';
import { WasmEngine } from './wasm-engine.js';
import type {
  DatabaseOperation,
  OperationReply,
  WorkerEvent,
  WorkerReply,
  WorkerRequest,
} from './worker-protocol.js';

// The worker side of sqliteWasm(): one database per worker. OPFS's synchronous access handles
// exist only in workers, which is why SQLite runs here. A database of its own is run right here;
// a shared one (several tabs, one name) is run by whichever tab's worker owns it (see
// SharedDatabase), and this worker forwards to it. Requests are not queued here: the driver sends
// none before `open` is answered, and statements take turns on the connection in OwnedDatabase.
const scope = self as unknown as DedicatedWorkerGlobalScope;
let database: { perform(op: DatabaseOperation): Promise<OperationReply>; close(): void } | undefined;

async function open(request: Extract<WorkerRequest, { type: 'open' }>): Promise<OperationReply> {
  if (database) return { ok: true };
  const { options, share } = request;
  if (share && options.name !== undefined) {
    const { shared, storage } = await SharedDatabase.join(
      share.tab,
      { ...options, name: options.name },
      (event: WorkerEvent) => scope.postMessage(event),
    );
    database = { perform: (op) => shared.perform(op), close: () => shared.close() };
    return { ok: true, storage };
  }
  const tab = 'self';
  const owned = new OwnedDatabase(await WasmEngine.open(options), tab);
  database = { perform: (op) => owned.perform(tab, op), close: () => owned.close() };
  return { ok: true, storage: owned.storage };
}

async function handle(request: WorkerRequest): Promise<OperationReply> {
  switch (request.type) {
    case 'open':
      return open(request);
    case 'close':
      database?.close();
      database = undefined;
      return { ok: true };
    default:
      if (!database) throw new Error('the database is not open');
      return database.perform(request);
  }
}

scope.addEventListener('message', (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  void handle(request)
    .catch((error: unknown): OperationReply => ({ ok: false, error: serializeError(error) }))
    .then((reply) => scope.postMessage({ id: request.id, ...reply } satisfies WorkerReply));
});
