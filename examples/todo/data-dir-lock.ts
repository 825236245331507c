import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Claims a PGlite data folder for this process: PGlite is one process's database, and two demos
 * on one folder would corrupt it. Writes `<dir>.pid` beside the folder (PostgreSQL wants its own
 * folder to itself), or throws saying which process holds it (a lock left by a process that is gone
 * is taken over). Returns the release.
 *
 * @example
 *   const release = claimDataDir(DEFAULT_DATA_DIR);
 *   // ... on shutdown:
 *   release();
 */
export function claimDataDir(dir: string): () => void {
  mkdirSync(dirname(dir), { recursive: true });
  const lock = `${dir}.pid`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => rmSync(lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(lock, 'utf8'));
      if (alive(holder)) {
        throw new Error(
          `another demo (process ${holder}) is using ${dir}: stop it first, or set DATABASE_URL to use PostgreSQL`,
        );
      }
      rmSync(lock, { force: true });
    }
  }
  throw new Error(`could not claim ${dir}: remove ${lock} and try again`);
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
