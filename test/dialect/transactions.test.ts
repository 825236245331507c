import { expect, it } from 'vitest';
import {
  ConstraintError,
  type Database,
  DatabaseError,
  eq,
  integer,
  schema,
  sql,
  type Transaction,
  TransactionClosedError,
  table,
  text,
  UsageError,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';

const notes = table('notes', {
  id: integer().primaryKey(),
  body: text().notNull(),
});

const counters = table('counters', {
  id: integer().primaryKey(),
  value: integer().notNull().default(0),
});

const txSchema = schema({ notes, counters });

type Db = Database<typeof txSchema>;

async function bodies(db: Db | Transaction): Promise<string[]> {
  const rows = await db.select({ body: notes.body }).from(notes).orderBy(notes.id);
  return rows.map((r) => r.body);
}

/** A promise and the function that resolves it, to hold a transaction open at a chosen point. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

dialectSuite('transactions', (env) => {
  it('commits what the callback wrote and returns its result', async () => {
    const db = await env.open(txSchema);
    const result = await db.transaction(async (tx) => {
      await tx.insert(notes).values({ id: 1, body: 'a' });
      await tx.insert(notes).values({ id: 2, body: 'b' });
      // Inside, the transaction sees its own writes.
      expect(await bodies(tx)).toEqual(['a', 'b']);
      return 'done';
    });
    expect(result).toBe('done');
    expect(await bodies(db)).toEqual(['a', 'b']);
  });

  it('rolls back when the callback throws, and rethrows the same error', async () => {
    const db = await env.open(txSchema);
    await db.insert(notes).values({ id: 1, body: 'before' });
    const failure = new Error('changed my mind');
    await expect(
      db.transaction(async (tx) => {
        await tx.insert(notes).values({ id: 2, body: 'inside' });
        await tx.update(notes).set({ body: 'edited' }).where(eq(notes.id, 1));
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await bodies(db)).toEqual(['before']);
    // The connection came back in a usable state.
    await db.insert(notes).values({ id: 3, body: 'after' });
    expect(await bodies(db)).toEqual(['before', 'after']);
  });

  it('rolls back, and says why, when a statement failed and the callback caught its error', async () => {
    const db = await env.open(txSchema);
    await db.insert(notes).values({ id: 1, body: 'before' });
    const outcome = await db
      .transaction(async (tx) => {
        await tx.insert(notes).values({ id: 2, body: 'inside' });
        await tx
          .insert(notes)
          .values({ id: 1, body: 'duplicate' })
          .catch(() => 'ignored');
        return 'committed';
      })
      .catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(DatabaseError);
    expect((outcome as DatabaseError).message).toMatch(/rolled back because a statement in it failed/);
    expect((outcome as DatabaseError).cause).toBeInstanceOf(ConstraintError);
    // Nothing of the transaction was kept, on every dialect (PostgreSQL would have dropped it silently).
    expect(await bodies(db)).toEqual(['before']);
    // The same inside a savepoint: only the savepoint is rolled back, and the outer one goes on.
    await db.transaction(async (tx) => {
      const inner = await tx
        .transaction(async (sp) => {
          await sp.insert(notes).values({ id: 3, body: 'in savepoint' });
          await sp
            .insert(notes)
            .values({ id: 1, body: 'duplicate' })
            .catch(() => 'ignored');
        })
        .catch((error: unknown) => error);
      expect(inner).toBeInstanceOf(DatabaseError);
      await tx.insert(notes).values({ id: 4, body: 'after savepoint' });
    });
    expect(await bodies(db)).toEqual(['before', 'after savepoint']);
  });

  it('runs a nested transaction as a savepoint: an inner throw rolls back only the inner part', async () => {
    const db = await env.open(txSchema);
    const innerFailure = new Error('inner');
    await db.transaction(async (tx) => {
      await tx.insert(notes).values({ id: 1, body: 'outer before' });
      await expect(
        tx.transaction(async (inner) => {
          await inner.insert(notes).values({ id: 2, body: 'inner' });
          expect(await bodies(inner)).toEqual(['outer before', 'inner']);
          throw innerFailure;
        }),
      ).rejects.toBe(innerFailure);
      // The outer transaction goes on, without the inner write.
      expect(await bodies(tx)).toEqual(['outer before']);
      await tx.insert(notes).values({ id: 3, body: 'outer after' });
    });
    expect(await bodies(db)).toEqual(['outer before', 'outer after']);
  });

  it('keeps what a nested transaction committed when the outer one commits', async () => {
    const db = await env.open(txSchema);
    await db.transaction(async (tx) => {
      const value = await tx.transaction(async (inner) => {
        await inner.insert(notes).values({ id: 1, body: 'inner' });
        // Two levels deep.
        await inner.transaction(async (deeper) => {
          await deeper.insert(notes).values({ id: 2, body: 'deeper' });
        });
        return 42;
      });
      expect(value).toBe(42);
      await tx.insert(notes).values({ id: 3, body: 'outer' });
    });
    expect(await bodies(db)).toEqual(['inner', 'deeper', 'outer']);
  });

  it('rolls back a committed savepoint too when the outer transaction throws', async () => {
    const db = await env.open(txSchema);
    await expect(
      db.transaction(async (tx) => {
        await tx.transaction(async (inner) => {
          await inner.insert(notes).values({ id: 1, body: 'inner' });
        });
        throw new Error('outer fails');
      }),
    ).rejects.toThrow('outer fails');
    expect(await bodies(db)).toEqual([]);
  });

  it('rejects queries on a transaction handle after it committed or rolled back', async () => {
    const db = await env.open(txSchema);
    let committed: Transaction | undefined;
    await db.transaction(async (tx) => {
      committed = tx;
    });
    const afterCommit = committed!.insert(notes).values({ id: 1, body: 'late' });
    await expect(afterCommit).rejects.toBeInstanceOf(TransactionClosedError);
    await expect(committed!.select().from(notes)).rejects.toThrow(/already committed/);
    await expect(committed!.transaction(async () => 'nested')).rejects.toBeInstanceOf(TransactionClosedError);

    let rolledBack: Transaction | undefined;
    await expect(
      db.transaction(async (tx) => {
        rolledBack = tx;
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const error = await rolledBack!
      .insert(notes)
      .values({ id: 2, body: 'late' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(TransactionClosedError);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/already rolled back/);

    // A savepoint's handle is closed once the savepoint ends, even while the outer one runs.
    await db.transaction(async (tx) => {
      let inner: Transaction | undefined;
      await tx.transaction(async (t) => {
        inner = t;
      });
      await expect(inner!.select().from(notes)).rejects.toBeInstanceOf(TransactionClosedError);
      await expect(inner!.execute(sql`select 1`)).rejects.toBeInstanceOf(TransactionClosedError);
    });
    expect(await bodies(db)).toEqual([]);
  });

  it('never runs other database queries inside an open transaction', async () => {
    const db = await env.open(txSchema);
    const wrote = signal();
    const finish = signal();
    const transaction = db.transaction(async (tx) => {
      await tx.insert(notes).values({ id: 1, body: 'inside' });
      wrote.resolve();
      await finish.promise;
      throw new Error('roll back');
    });
    await wrote.promise;

    // A write on the database (not on tx) while the transaction is open.
    let outsideDone = false;
    const outside = db
      .insert(notes)
      .values({ id: 2, body: 'outside' })
      .then((r) => {
        outsideDone = true;
        return r;
      });

    if (env.driver.name === 'postgres') {
      // A pool: the write runs at once on another connection, and reads there do not see
      // the transaction's uncommitted row.
      expect(await outside).toEqual({ rowsAffected: 1 });
      expect(await bodies(db)).toEqual(['outside']);
    } else {
      // One connection: the write waits for the transaction to end, so it cannot end up inside it.
      await tick(50);
      expect(outsideDone).toBe(false);
    }

    finish.resolve();
    await expect(transaction).rejects.toThrow('roll back');
    expect(await outside).toEqual({ rowsAffected: 1 });
    expect(outsideDone).toBe(true);
    // The rollback took the transaction's write and nothing else.
    expect(await bodies(db)).toEqual(['outside']);
  });

  it('makes other database reads wait for (sqlite, pglite) or not see (postgres) uncommitted rows', async () => {
    const db = await env.open(txSchema);
    const wrote = signal();
    const finish = signal();
    const transaction = db.transaction(async (tx) => {
      await tx.insert(notes).values({ id: 1, body: 'uncommitted' });
      wrote.resolve();
      await finish.promise;
    });
    await wrote.promise;

    let seen: string[] | undefined;
    const read = bodies(db).then((b) => (seen = b));
    if (env.driver.name === 'postgres') {
      await read;
      expect(seen).toEqual([]);
    } else {
      await tick(50);
      expect(seen).toBeUndefined();
    }
    finish.resolve();
    await transaction;
    await read;
    // On one connection the read ran after the commit; on a pool it ran before it.
    expect(seen).toEqual(env.driver.name === 'postgres' ? [] : ['uncommitted']);
    expect(await bodies(db)).toEqual(['uncommitted']);
  });

  it('runs concurrent transactions without interleaving, and commits them all', async () => {
    const db = await env.open(txSchema);
    await db.insert(counters).values(Array.from({ length: 10 }, (_, i) => ({ id: i + 1, value: 0 })));
    const events: string[] = [];

    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        db.transaction(async (tx) => {
          const id = i + 1;
          events.push(`begin ${id}`);
          // Read-modify-write of this transaction's own counter, with pauses that let others run.
          for (let step = 0; step < 3; step++) {
            const [row] = await tx.select().from(counters).where(eq(counters.id, id));
            await tick(1);
            await tx
              .update(counters)
              .set({ value: row!.value + id })
              .where(eq(counters.id, id));
          }
          await tx.insert(notes).values([
            { id: id * 100 + 1, body: `t${id} a` },
            { id: id * 100 + 2, body: `t${id} b` },
          ]);
          events.push(`end ${id}`);
        }),
      ),
    );

    const values = await db.select().from(counters).orderBy(counters.id);
    expect(values).toEqual(Array.from({ length: 10 }, (_, i) => ({ id: i + 1, value: 3 * (i + 1) })));
    expect(await bodies(db)).toHaveLength(20);

    if (env.driver.name !== 'postgres') {
      // One connection: each transaction ends before the next begins.
      for (let k = 0; k < events.length; k += 2) {
        expect(events[k]).toMatch(/^begin /);
        expect(events[k + 1]).toBe(events[k]!.replace('begin', 'end'));
      }
    }
  });

  it('commits the others when one of several concurrent transactions fails', async () => {
    const db = await env.open(txSchema);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        db.transaction(async (tx) => {
          await tx.insert(notes).values({ id: i, body: `t${i}` });
          await tick(1);
          if (i === 3) throw new Error('t3 fails');
          await tx.insert(notes).values({ id: 100 + i, body: `t${i} again` });
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    const stored = await bodies(db);
    expect(stored).toHaveLength(10);
    expect(stored.filter((b) => b.startsWith('t3'))).toEqual([]);
  });

  it('runs nested transactions started together one after another', async () => {
    const db = await env.open(txSchema);
    await db.transaction(async (tx) => {
      await Promise.allSettled([
        tx.transaction(async (a) => {
          await a.insert(notes).values({ id: 1, body: 'a' });
          await tick(5);
          throw new Error('a fails');
        }),
        tx.transaction(async (b) => {
          await b.insert(notes).values({ id: 2, body: 'b' });
        }),
      ]);
    });
    // Had the savepoints interleaved, rolling back a would have taken b's write with it.
    expect(await bodies(db)).toEqual(['b']);
  });

  it.skipIf(env.driver.name !== 'postgres')(
    'holds one pooled connection for the whole transaction (node-postgres)',
    async () => {
      const db = await env.open(txSchema);
      const pid = async (scope: Db | Transaction) => {
        const [row] = await scope.execute<{ pid: number }>(sql`select pg_backend_pid() as pid`);
        return row!.pid;
      };
      await db.transaction(async (tx) => {
        const first = await pid(tx);
        await tx.insert(notes).values({ id: 1, body: 'a' });
        await tx.select().from(notes);
        await tx.transaction(async (inner) => {
          expect(await pid(inner)).toBe(first);
        });
        expect(await pid(tx)).toBe(first);
        // The transaction's connection is checked out: queries on the database use another one.
        const others = await Promise.all([pid(db), pid(db), pid(db)]);
        for (const other of others) expect(other).not.toBe(first);
      });
    },
  );
});
