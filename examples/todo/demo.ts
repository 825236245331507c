import { onStopSignal } from '../../src/cli/stop-signals.js';
import { claimDataDir } from './data-dir-lock.js';
import { DEFAULT_DATA_DIR, startTodoServer } from './server.js';

/**
 * `npm run demo`: the todo app on http://127.0.0.1:5173 (or PORT; a free port when that one is
 * taken), on PGlite in examples/todo/.data, or on the PostgreSQL that DATABASE_URL names. Ctrl-C
 * (or SIGTERM) shuts it down cleanly.
 */
const database = process.env.DATABASE_URL || DEFAULT_DATA_DIR;
const where = process.env.DATABASE_URL
  ? `PostgreSQL at ${new URL(database).host}`
  : 'PGlite in examples/todo/.data';

let release = () => {};
let app: Awaited<ReturnType<typeof startTodoServer>>;
try {
  if (!process.env.DATABASE_URL) release = claimDataDir(database);
  app = await startTodoServer({
    port: process.env.PORT ? Number(process.env.PORT) : 5173,
    anyPortIfTaken: true,
    database,
  });
} catch (error) {
  release();
  console.error(`the todo demo could not start: ${(error as Error).message}`);
  process.exit(1);
}
console.log(`syncline todo demo on ${where}`);
console.log(`  open ${app.url}?user=alice and ${app.url}?user=bob (another browser or a private window)`);
console.log('  Ctrl-C to stop');

let stopping = false;
const stop = (why: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${why}: shutting down`);
  app.close().then(
    () => {
      release();
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
};
// Also when npm, which started it through a shell, is stopped: see onStopSignal.
onStopSignal(stop);
