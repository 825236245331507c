import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { type SchemaSnapshot, SNAPSHOT_FORMAT } from '../migrations/snapshot.js';

/** A snapshot file of a snapshots folder. */
export interface SnapshotFile {
  readonly version: number;
  readonly file: string;
  readonly snapshot: SchemaSnapshot;
}

/**
 * Reads every `v<version>.json` of a folder written by `npx syncline schema export`, oldest first.
 * A file whose content names another version than its file name is an error.
 */
export function readSnapshots(dir: string): SnapshotFile[] {
  if (!existsSync(dir)) {
    throw new UsageError(
      `the snapshots folder ${dir} does not exist: write one with npx syncline schema export --schema <file> --out ${dir}`,
    );
  }
  const files: SnapshotFile[] = [];
  for (const name of readdirSync(dir)) {
    const match = /^v(\d+)\.json$/.exec(name);
    if (!match) continue;
    const file = join(dir, name);
    let snapshot: SchemaSnapshot;
    try {
      snapshot = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new UsageError(`${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
    if (snapshot?.format !== SNAPSHOT_FORMAT) {
      throw new UsageError(`${file} is not a syncline schema snapshot of format ${SNAPSHOT_FORMAT}`);
    }
    const version = Number(match[1]);
    if (snapshot.version !== version) {
      throw new UsageError(`${file} holds the schema of version ${snapshot.version}, not ${version}`);
    }
    files.push({ version, file, snapshot });
  }
  return files.sort((a, b) => a.version - b.version);
}
