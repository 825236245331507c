import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { eq, ne } from '../../src/index.js';
import { defineMutators } from '../../src/sync/mutators/define-mutators.js';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import { PROTOCOL_VERSION } from '../../src/sync/protocol/messages.js';
import type { SyncRules } from '../../src/sync/server/index.js';
import { RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { abuseSchema, legitimatePair, notes, notesHello } from './legitimate-clients.js';

/**
 * A hostile client pushing mutations (README "Mutators"): a name the server has no mutator of
 * (prototype names included), arguments the validator refuses or that try to pollute a prototype,
 * rows naming tables it cannot name or rows it may not read, more rows than a batch may carry,
 * malformed mutation batches. Each is a clear rejection or a refused message, never a crash or a
 * leak; the attacker's connection and other users' sync go on.
 */

const rules: SyncRules<typeof abuseSchema> = {
  notes: {
    // Alice's notes are hers alone; the legitimate pair reads each other's.
    read: (user) => (user.userId === 'alice' ? true : ne(notes.ownerId, 'alice')),
    write: (user, row) => row.ownerId === user.userId,
  },
  bulk: { read: () => false },
};

/** The server's mutators: `addNote`, whose note belongs to whoever pushed it, and `throwWeird`. */
const mutators = defineMutators({
  addNote: {
    args: z.strictObject({ id: z.uuid(), body: z.string().max(100) }),
    run: async (tx, { id, body }, ctx) => {
      if (ctx.location !== 'server') return;
      await tx.insert(notes).values({ id, ownerId: ctx.user.userId, body });
    },
  },
  // Throws what cannot become a string: still a rejection, not a server failure pushed forever.
  throwWeird: {
    args: z.strictObject({}),
    run: async () => {
      throw {
        toString() {
          throw new Error('no string for you');
        },
      };
    },
  },
});

interface Mutation {
  name: string;
  args?: unknown;
  rows?: { table: string; pk: Record<string, unknown> }[];
}

function mutationPush(clientId: string, mutationId: number, mutation: Mutation, extra: object = {}) {
  const hlc = encodeHlc({ wallMs: Date.now(), counter: 0, nodeId: clientId });
  return {
    type: 'push',
    v: PROTOCOL_VERSION,
    batches: [{ mutationId, changes: [], mutation: { rows: [], hlc, ...mutation }, ...extra }],
  };
}

for (const driver of serverDrivers) {
  describe(`hostile mutations [${driver}]`, () => {
    it('are rejected or refused with a reason, leak no row, and stop nobody', async () => {
      const t = await startTestServer(abuseSchema, {
        driver,
        rules,
        mutators,
        limits: { maxChangesPerBatch: 10 },
      });
      const legit = await legitimatePair(t);
      const aliceNote = randomUUID();
      await t.server.db.insert(notes).values({ id: aliceNote, ownerId: 'alice', body: 'private' });

      const clientId = randomUUID();
      const mallory = await RawClient.connect(t.url);
      await mallory.sync(await notesHello(t, 'mallory', clientId));
      let mutationId = 0;
      const ack = async (mutation: Mutation, extra: object = {}) => {
        mallory.send(mutationPush(clientId, ++mutationId, mutation, extra));
        const { results } = await mallory.nextOf('ack');
        return results[0]!;
      };
      const note = { id: randomUUID(), body: 'hi' };

      for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'nope']) {
        const result = await ack({ name, args: note });
        expect(result).toMatchObject({
          status: 'rejected',
          reason: expect.stringMatching(/^unknown mutator/),
        });
      }
      expect(await ack({ name: 'addNote', args: { id: 'not a uuid', body: 'x' } })).toMatchObject({
        status: 'rejected',
        reason: expect.stringMatching(/^mutator "addNote": invalid arguments: id: /),
      });
      expect(await ack({ name: 'throwWeird', args: {} })).toMatchObject({
        status: 'rejected',
        reason: expect.stringMatching(/threw a value that is not an Error/),
      });
      expect(await ack({ name: 'addNote' })).toMatchObject({
        status: 'rejected',
        reason: expect.stringMatching(/^mutator "addNote": invalid arguments/),
      });
      const polluting = JSON.parse(`{"id":"${randomUUID()}","body":"x","__proto__":{"polluted":true}}`);
      expect(await ack({ name: 'addNote', args: polluting })).toMatchObject({ status: 'rejected' });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(
        await ack({
          name: 'addNote',
          args: note,
          rows: [{ table: '_syncline_stamps', pk: { id: note.id } }],
        }),
      ).toMatchObject({
        status: 'rejected',
        reason: expect.stringMatching(/unknown table "_syncline_stamps"/),
      });

      // A row it may not read, named as written by its run: the ack says it is not there.
      const applied = await ack({
        name: 'addNote',
        args: note,
        rows: [{ table: 'notes', pk: { id: aliceNote } }],
      });
      expect(applied).toEqual({
        mutationId,
        status: 'applied',
        rows: [{ table: 'notes', pk: { id: aliceNote }, row: null }],
      });
      const [mine] = await t.server.db.select().from(notes).where(eq(notes.id, note.id));
      expect(mine).toEqual({ id: note.id, ownerId: 'mallory', body: 'hi' });

      // Refused before anything runs: too many rows, changes beside a mutation, a name too long.
      const rows = Array.from({ length: 11 }, () => ({ table: 'notes', pk: { id: randomUUID() } }));
      mallory.send(mutationPush(clientId, ++mutationId, { name: 'addNote', args: note, rows }));
      expect(await mallory.nextOf('error')).toMatchObject({ code: 'too_large', fatal: false });
      const change = {
        table: 'notes',
        op: 'delete',
        pk: { id: aliceNote },
        hlc: encodeHlc({ wallMs: Date.now(), counter: 0, nodeId: 'm' }),
      };
      mallory.send(
        mutationPush(clientId, mutationId, { name: 'addNote', args: note }, { changes: [change] }),
      );
      expect(await mallory.nextOf('error')).toMatchObject({ code: 'invalid_message', fatal: false });
      mallory.send(mutationPush(clientId, mutationId, { name: 'x'.repeat(101), args: note }));
      expect(await mallory.nextOf('error')).toMatchObject({ code: 'invalid_message', fatal: false });

      // Its connection goes on, and so does everyone else's; alice's note is untouched.
      const again = { id: randomUUID(), body: 'still here' };
      expect(await ack({ name: 'addNote', args: again })).toMatchObject({ status: 'applied' });
      await legit.check();
      const [alices] = await t.server.db.select().from(notes).where(eq(notes.id, aliceNote));
      expect(alices?.body).toBe('private');
    });
  });
}
