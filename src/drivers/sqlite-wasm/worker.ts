/// <reference lib="webworker" />
import { SqliteWasmError } from './sqlite-wasm-error.js';
import { WasmEngine } from './wasm-engine.js';
import type { WorkerReply, WorkerRequest } from './worker-protocol.js';

// The worker side of sqliteWasm(): one database per worker, requests answered in order. OPFS's
// synchronous access handles exist only in workers, which is why SQLite runs here.
const scope = self as unknown as DedicatedWorkerGlobalScope;
let engine: WasmEngine | undefined;
let queue: Promise<void> = Promise.resolve();

function failure(id: number, error: unknown): WorkerReply {
  if (error instanceof SqliteWasmError) {
    return {
      id,
      ok: false,
      error: { message: error.message, code: error.code, resultCode: error.resultCode },
    };
  }
  return { id, ok: false, error: { message: error instanceof Error ? error.message : String(error) } };
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.type) {
    case 'open':
      engine ??= await WasmEngine.open(request.options);
      return { id: request.id, ok: true, storage: engine.storage };
    case 'query':
      if (!engine) throw new Error('the database is not open');
      return { id: request.id, ok: true, result: engine.run(request.query) };
    case 'close':
      engine?.close();
      engine = undefined;
      return { id: request.id, ok: true };
  }
}

scope.addEventListener('message', (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      reply = await handle(request);
    } catch (error) {
      reply = failure(request.id, error);
    }
    scope.postMessage(reply);
  });
});
