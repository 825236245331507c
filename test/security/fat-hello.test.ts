import { describe, expect, it } from 'vitest';
import { SYNC_CLOSE_CODES } from '../../src/sync/server/index.js';
import { RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { abuseSchema, legitimatePair, notesHello } from './legitimate-clients.js';

/**
 * A hello listing thousands of columns (the `columns` of clients on other schema versions): the
 * limit refuses more than a table can have, and a refusal names ten differences and counts the
 * rest, so its answer is small whatever the hello (it was over three times the hello's size).
 */
for (const driver of serverDrivers) {
  describe(`fat hellos [${driver}]`, () => {
    it('refuses too many columns, answers a long list of differences briefly, and stops nobody', async () => {
      const t = await startTestServer(abuseSchema, { driver });
      const legit = await legitimatePair(t);
      const base = await notesHello(t, 'mallory');
      const notes = { id: 'uuid', owner_id: 'text', body: 'text' };

      const tooMany = Object.fromEntries(Array.from({ length: 1601 }, (_, i) => [`c${i}`, 'text']));
      const first = await RawClient.connect(t.url);
      first.send({ ...base, columns: { notes: { ...notes, ...tooMany } } });
      const refused = await first.nextOf('error');
      expect(refused.code).toBe('invalid_message');
      expect(refused.message).toMatch(/at most 1,600 columns a table/);

      const unknown = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`c${i}`, 'text']));
      const second = await RawClient.connect(t.url);
      second.send({ ...base, columns: { notes: { ...notes, ...unknown } } });
      const mismatch = await second.nextOf('error');
      expect(mismatch.code).toBe('schema_mismatch');
      expect(mismatch.message).toMatch(
        /column "notes.c9" is not on the server \(dropped there\); and 1490 more differences/,
      );
      expect(mismatch.message.length).toBeLessThan(2000);
      expect((await second.closed).code).toBe(SYNC_CLOSE_CODES.schemaMismatch);
      await legit.check();
    });
  });
}
