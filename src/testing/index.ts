/**
 * syncline/testing: helpers for an app's own tests. `verifyMigrations` builds a database of every
 * released schema version from the snapshots `npx syncline schema export` wrote, migrates it to the
 * current version and checks the result, so a forgotten migration step fails the app's tests.
 *
 * @example
 *   import { verifyMigrations } from 'syncline/testing';
 *   await verifyMigrations({ schema: appSchema, snapshotsDir: 'schemas', driver: () => sqlite() });
 */
export { readSnapshots, type SnapshotFile } from './read-snapshots.js';
export { writeSampleRows } from './sample-rows.js';
export { type MigrationCheck, type VerifyMigrationsOptions, verifyMigrations } from './verify-migrations.js';
