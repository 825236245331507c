/**
 * A child process of `npm run bench:sync` holding many raw WebSocket clients, so that their CPU and
 * memory are not the sync server's: argv gives the server URL, how many sockets, and one table.
 * Each socket sends a `hello` with one shape (the whole table) and reads its snapshot; once all
 * are live the process reports `{ ready }` over IPC. Each socket counts the changes of its table
 * in every `changes` message it receives, by finding each change's `"table":"<name>"` in the text
 * (the server writes it so, and JSON escapes a quote inside a value), and parses every other
 * message; after `{ expect: n }` the process reports `{ done }` as soon as every socket has
 * counted n changes. The sockets stand for devices of their own: parsing each message in full
 * here took about two thirds of a core, taken from the server and PostgreSQL on this machine. `{ close: true }` ends it. A failure is reported as `{ failed }`.
 * Used by idle-memory.ts (sockets that only idle) and change-throughput.ts (the server's fan-out).
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import { benchSchema } from './bench-schema.js';

const WAVE = 50;
const [url, countText, table] = process.argv.slice(2);
const count = Number(countText);
const sockets: WebSocket[] = [];
const CHANGES_PREFIX = '{"type":"changes"';
const tableNeedle = `"table":${JSON.stringify(table)}`;

/** How many times `needle` occurs in `text`. */
function occurrences(text: string, needle: string): number {
  let n = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) n++;
  return n;
}
const received: number[] = [];
let expected = Number.POSITIVE_INFINITY;
let behind = 0;

function report(message: object): void {
  process.send?.(message);
}

function counted(i: number, n: number): void {
  const before = received[i]!;
  received[i] = before + n;
  if (before < expected && received[i]! >= expected && --behind === 0) report({ done: true });
}

/** Opens socket `i` and resolves once its snapshot's last chunk arrived. */
function connect(i: number): Promise<void> {
  received[i] = 0;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url!);
    sockets.push(socket);
    socket.on('error', reject);
    socket.on('close', (code, reason) => {
      const error = new Error(`the server closed socket ${i}: ${code} ${reason.toString()}`);
      reject(error);
      report({ failed: error.message });
    });
    socket.on('open', () => {
      socket.send(
        JSON.stringify({
          type: 'hello',
          v: PROTOCOL_VERSION,
          clientId: randomUUID(),
          schemaVersion: benchSchema.version,
          token: 'socket',
          shapes: [{ id: table, table }],
        }),
      );
    });
    socket.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith(CHANGES_PREFIX)) {
        counted(i, occurrences(text, tableNeedle));
        return;
      }
      const message = JSON.parse(text) as {
        type: string;
        last?: boolean;
        message?: string;
        changes?: { table: string }[];
      };
      if (message.type === 'snapshot' && message.last) resolve();
      else if (message.type === 'changes')
        counted(i, message.changes!.filter((c) => c.table === table).length);
      else if (message.type === 'error')
        reject(new Error(`the server refused socket ${i}: ${message.message}`));
    });
  });
}

async function main(): Promise<void> {
  if (!url || !table || !Number.isInteger(count) || count < 1) {
    throw new Error('socket-clients.ts: pass the server URL, the number of sockets and a table name');
  }
  for (let i = 0; i < count; i += WAVE) {
    await Promise.all(Array.from({ length: Math.min(WAVE, count - i) }, (_, j) => connect(i + j)));
  }
  report({ ready: sockets.length });
}

process.on('message', (message: { close?: boolean; expect?: number }) => {
  if (message.expect !== undefined) {
    expected = message.expect;
    behind = received.filter((n) => n < expected).length;
    if (behind === 0) report({ done: true });
  }
  if (!message.close) return;
  for (const socket of sockets) {
    socket.removeAllListeners('close');
    socket.terminate();
  }
  process.exit(0);
});
// The parent gone means nobody will say close.
process.on('disconnect', () => process.exit(0));

main().catch((error) => {
  report({ failed: (error as Error).message });
  process.exit(1);
});
