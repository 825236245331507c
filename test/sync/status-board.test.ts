import { describe, expect, it } from 'vitest';
import { withoutValues } from '../../src/sync/server/status-board.js';

// The status page lists rejection reasons without the values they quote (docs/operations.md).
describe('the status page hides the values a rejection reason quotes', () => {
  it.each([
    [
      'not-null constraint failed on todos.title: Failing row contains (5, 7, null, f, "[\\"PII\\"]").',
      'not-null constraint failed on todos.title: Failing row contains (…).',
    ],
    [
      'duplicate key value violates unique constraint: Key (email)=(a@b.c) already exists',
      'duplicate key value violates unique constraint: Key (email)=(…) already exists',
    ],
    [
      'lists: the write rule refused the insert of row {"id":"1f8f"}',
      'lists: the write rule refused the insert of row {…}',
    ],
    [
      'the value for secrets.n must be a number, got the string "PII-4"',
      'the value for secrets.n must be a number, got the string "…"',
    ],
    ["invalid input syntax for type uuid: 'PII-5'", "invalid input syntax for type uuid: '…'"],
  ])('%s', (reason, shown) => {
    expect(withoutValues(reason)).toBe(shown);
    expect(withoutValues(reason)).not.toMatch(/PII|a@b|1f8f/);
  });
});
