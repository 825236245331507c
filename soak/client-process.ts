/**
 * A soak client in a process of its own: a better-sqlite3 file database and a sync client that
 * reaches the server through the harness's fault proxy. The parent asks it to write, stop, start,
 * flush, catch up and dump its tables; it reports every push it sends and every ack it receives
 * (the history the checker reads), rejections, errors other than connection drops, and unhandled
 * rejections. It may be SIGKILLed at any moment and started again on the same file.
 *
 * Run by the harness: `client-process.ts <variant> <file> <url> <token>`.
 */
import WebSocket from 'ws';
import { sqlite } from '../src/drivers/better-sqlite3/index.js';
import { is, openDatabase } from '../src/index.js';
import {
  SyncConnectionError,
  type SyncSocket,
  syncClient,
  type WebSocketConstructor,
} from '../src/sync/client/index.js';
import { emit, serveParent } from './child.js';
import { soakMutators } from './mutators.js';
import type { Step } from './plan.js';
import { type SchemaVariant, soakSchema } from './schema.js';
import { applyWrites } from './writes.js';

const [variant, file, url, token] = process.argv.slice(2) as [SchemaVariant, string, string, string];
const s = soakSchema(variant);
const db = await openDatabase(s.schema, sqlite({ path: file }));

let clientId: string | undefined;

/** The real `ws` socket, watched: push frames out and ack frames in are reported to the parent. */
class WatchedSocket implements SyncSocket {
  private readonly socket: WebSocket;
  constructor(address: string) {
    this.socket = new WebSocket(address);
    this.socket.on('error', () => {});
  }
  get readyState() {
    return this.socket.readyState;
  }
  send(data: string): void {
    if (data.startsWith('{"type":"push"')) {
      const push = JSON.parse(data) as { batches: unknown[] };
      emit('push', { clientId: clientId ?? sync.clientId, batches: push.batches });
    }
    this.socket.send(data);
  }
  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }
  terminate(): void {
    this.socket.terminate();
  }
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void {
    if (type !== 'message') {
      this.socket.addEventListener(type, listener);
      return;
    }
    this.socket.addEventListener('message', (event) => {
      const text = String(event.data);
      if (text.startsWith('{"type":"ack"')) {
        emit('ack', { clientId: clientId ?? sync.clientId, results: JSON.parse(text).results });
      }
      listener(event);
    });
  }
}

const sync = syncClient(db, {
  url,
  token,
  WebSocket: WatchedSocket as unknown as WebSocketConstructor,
  backoff: { initialMs: 20, maxMs: 400 },
  pingIntervalMs: 2000,
  mutators: soakMutators(s),
});
sync.on('error', (error) => {
  if (!is(error, SyncConnectionError)) emit('error', { message: `${error.name}: ${error.message}` });
});
sync.on('rejected', (event) => emit('rejected', { mutationId: event.mutationId, reason: event.reason }));

/** Every row of the soak's tables, ordered by key, as app values. */
async function dump(): Promise<Record<string, Record<string, unknown>[]>> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const table of s.tables) {
    const rows = (await db.select().from(table as any)) as Record<string, unknown>[];
    out[table.$name] = rows.sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
  }
  return out;
}

serveParent({
  async start() {
    await sync.start();
    clientId = sync.clientId;
    return clientId;
  },
  stop: () => sync.stop(),
  async write(step: Extract<Step, { kind: 'write' }>) {
    const { mutation } = step;
    if (mutation?.name === 'retitle') await sync.mutate.retitle(mutation.args);
    else if (mutation?.name === 'clearNotes') await sync.mutate.clearNotes(mutation.args);
    else await applyWrites(db, s, step.writes);
  },
  flush: () => sync.flush(),
  caughtUp: () => sync.caughtUp(),
  status: () => sync.status,
  dump,
  clientId: () => sync.clientId,
  heap: () => process.memoryUsage().heapUsed,
});
emit('ready', { pid: process.pid });
