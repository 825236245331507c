import { z } from 'zod';
import { and, type Database, eq } from '../../src/index.js';
import {
  defineMutators,
  type MutationResult,
  type MutatorContext,
  type SyncClient,
  syncClient,
} from '../../src/sync/client/index.js';
import type { SyncUser } from '../../src/sync/server/index.js';
import { expectType } from './assert.js';
import { type appSchema, todos } from './schema.js';

declare const db: Database<typeof appSchema>;

// A mutator's arguments are typed by its validator, a schema or a function, in `run` and in
// `sync.mutate`; `ctx.user` is the signed-in user only where `location` is 'server'.

const mutators = defineMutators({
  clearCompleted: {
    args: z.object({ listId: z.string() }),
    run: async (tx, args, ctx) => {
      expectType<typeof args>().toBe<{ listId: string }>();
      expectType<typeof ctx>().toBe<MutatorContext>();
      if (ctx.location === 'server') expectType<typeof ctx.user>().toBe<SyncUser>();
      else expectType<typeof ctx.user>().toBe<undefined>();
      await tx.delete(todos).where(and(eq(todos.listId, args.listId), eq(todos.done, true)));
    },
  },
  rename: {
    args: (value: unknown) => value as { id: string; title: string },
    run: async (tx, { id, title }) => {
      await tx.update(todos).set({ title }).where(eq(todos.id, id));
    },
  },
  touchAll: {
    args: z.undefined(),
    run: async () => {},
  },
});

const sync = syncClient(db, { url: 'ws://localhost/sync', mutators });
expectType<typeof sync>().toBe<SyncClient<typeof mutators>>();
expectType<ReturnType<typeof sync.mutate.clearCompleted>>().toBe<Promise<MutationResult>>();
void sync.mutate.clearCompleted({ listId: 'l1' });
void sync.mutate.rename({ id: 't1', title: 'Milk' });
void sync.mutate.touchAll();
// @ts-expect-error: listId must be a string
void sync.mutate.clearCompleted({ listId: 1 });
// @ts-expect-error: arguments are required when the validator needs them
void sync.mutate.clearCompleted();
// @ts-expect-error: no such mutator
void sync.mutate.archive({ listId: 'l1' });

// A client made without mutators has none.
const plain = syncClient(db, { url: 'ws://localhost/sync' });
// @ts-expect-error: no mutators given
void plain.mutate.clearCompleted({ listId: 'l1' });

defineMutators({
  // @ts-expect-error: run's arguments are the validator's output
  wrong: { args: z.object({ n: z.number() }), run: async (_tx, args: { n: string }) => void args },
});
