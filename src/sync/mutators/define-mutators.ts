import type { Transaction } from '../../database/transaction.js';
import { entityKind } from '../../entity.js';
import { UsageError } from '../../errors.js';
import type { SyncUser } from '../server/rules.js';

/**
 * A schema in the Standard Schema form (https://standardschema.dev), which zod, valibot and
 * arktype schemas all are: `validate` returns the value or the issues. Declared here (the spec
 * asks libraries to copy it) so that syncline depends on no validation library's types.
 *
 * @example
 *   const args: StandardSchema<{ listId: string }> = z.object({ listId: z.string() });
 */
export interface StandardSchema<Output = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: unknown; readonly output: Output } | undefined;
  };
}

type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<unknown> }> };

/**
 * How a mutator's arguments are checked, on the client before its optimistic run and on the
 * server before its authoritative one: a Standard Schema (a zod schema), or a function that
 * returns the arguments or throws.
 *
 * @example
 *   const args: ArgsValidator<{ listId: string }> = z.object({ listId: z.string() });
 *   const same: ArgsValidator<{ listId: string }> = (value) => { if (typeof (value as any)?.listId !== 'string') throw new Error('listId'); return value as { listId: string }; };
 */
export type ArgsValidator<Args> = StandardSchema<Args> | ((value: unknown) => Args);

/**
 * Where a mutator runs and for whom. On the server (`location: 'server'`) `user` is the signed-in
 * user who pushed it, the one to check permissions against: the server's run is the one that
 * counts. On the client (`location: 'client'`, the optimistic run) there is no verified user.
 * `clientId` and `mutationId` name the mutation on both sides.
 *
 * @example
 *   if (ctx.location === 'server' && list.ownerId !== ctx.user.userId) throw new Error('not your list');
 */
export type MutatorContext =
  | {
      readonly location: 'server';
      readonly user: SyncUser;
      readonly clientId: string;
      readonly mutationId: number;
    }
  | {
      readonly location: 'client';
      readonly user: undefined;
      readonly clientId: string;
      readonly mutationId: number;
    };

/**
 * One mutator: how its arguments are checked (`args`) and what it does (`run`), given a
 * transaction of the database it runs on (the client's SQLite, or the server's PostgreSQL inside
 * the push's transaction), the checked arguments and the context. Throwing rejects the mutation.
 *
 * @example
 *   const rename: MutatorDefinition<{ id: string; name: string }> = {
 *     args: z.object({ id: z.string(), name: z.string().max(100) }),
 *     run: async (tx, { id, name }) => { await tx.update(lists).set({ name }).where(eq(lists.id, id)); },
 *   };
 */
export interface MutatorDefinition<Args> {
  readonly args: ArgsValidator<Args>;
  readonly run: (tx: Transaction, args: Args, ctx: MutatorContext) => Promise<void> | void;
}

/**
 * Mutators by name, as `defineMutators` returns them (the argument types kept per name).
 *
 * @example
 *   const mutators: Mutators<{ clearCompleted: { listId: string } }> = defineMutators({ ... });
 */
export type Mutators<A extends Record<string, unknown> = Record<string, any>> = {
  readonly [K in keyof A]: MutatorDefinition<A[K]>;
};

/** Any set of mutators (what `syncClient` and `createSyncServer` take). */
export type AnyMutators = Mutators<Record<string, any>>;

/** The arguments of each mutator of a set, by name. */
export type MutatorArgs<M extends AnyMutators> = {
  [K in keyof M]: M[K] extends MutatorDefinition<infer A> ? A : never;
};

const NAME = /^[A-Za-z_$][\w$.-]{0,99}$/;

/**
 * Defines mutators: named pieces of business logic that the client runs at once on its SQLite
 * (optimistic: live queries update) and records in its outbox, and that the server runs again,
 * authoritative, in the transaction that applies the push (README "Mutators"). Define them once,
 * in a module both sides import; give the same object to `syncClient({ mutators })` and
 * `createSyncServer({ mutators })` (the server may override `run` for itself). The argument types
 * come from `args`; names are identifiers (letters, digits, `_`, `$`, `.`, `-`; at most 100).
 *
 * @example
 *   export const mutators = defineMutators({
 *     clearCompleted: {
 *       args: z.object({ listId: z.string() }),
 *       run: async (tx, { listId }) => {
 *         await tx.delete(todos).where(and(eq(todos.listId, listId), eq(todos.done, true)));
 *       },
 *     },
 *   });
 */
export function defineMutators<A extends Record<string, unknown>>(
  mutators: {
    [K in keyof A]: MutatorDefinition<A[K]>;
  },
): Mutators<A> {
  for (const [name, definition] of Object.entries(mutators) as [string, MutatorDefinition<unknown>][]) {
    if (!NAME.test(name)) {
      throw new UsageError(
        `defineMutators(): "${name}" is not a mutator name; use letters, digits, _, $, . and - (at most 100, not starting with a digit)`,
      );
    }
    const { args, run } = definition ?? ({} as Partial<MutatorDefinition<unknown>>);
    if (typeof run !== 'function' || !(typeof args === 'function' || isStandardSchema(args))) {
      throw new UsageError(
        `defineMutators(): mutator "${name}" needs { args, run }: args a schema (zod, or any Standard Schema) or a function that checks and returns the arguments, run an async function (tx, args, ctx)`,
      );
    }
  }
  return Object.freeze({ ...mutators }) as Mutators<A>;
}

function isStandardSchema(value: unknown): value is StandardSchema {
  const props = (value as { '~standard'?: { validate?: unknown } } | null)?.['~standard'];
  return typeof props?.validate === 'function';
}

/** The mutator of a set by name: own properties only, so `constructor` or `__proto__` name none. */
export function mutatorNamed(
  mutators: AnyMutators | undefined,
  name: string,
): MutatorDefinition<unknown> | undefined {
  if (!mutators || !Object.hasOwn(mutators, name)) return undefined;
  return mutators[name] as MutatorDefinition<unknown>;
}

/**
 * Why a mutator's arguments were refused: what the validator said, with the mutator's name.
 *
 * @example
 *   catch (e) { if (e instanceof MutatorArgsError) console.log(e.mutator, e.message); }
 */
export class MutatorArgsError extends UsageError {
  static override readonly [entityKind]: string = 'MutatorArgsError';
  constructor(
    readonly mutator: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`mutator "${mutator}": invalid arguments: ${detail}`, options);
  }
}

/**
 * Checks `value` with a mutator's validator and returns the arguments it gives (a schema may
 * transform them), or throws `MutatorArgsError` saying why not.
 *
 * @example
 *   const args = await validateMutatorArgs('clearCompleted', mutators.clearCompleted, JSON.parse(json));
 */
export async function validateMutatorArgs(
  name: string,
  definition: MutatorDefinition<unknown>,
  value: unknown,
): Promise<unknown> {
  const { args } = definition;
  if (typeof args === 'function') {
    try {
      return await args(value);
    } catch (error) {
      throw new MutatorArgsError(name, (error as Error)?.message ?? String(error), { cause: error });
    }
  }
  const result = await args['~standard'].validate(value);
  if (result.issues) {
    const detail = result.issues
      .slice(0, 5)
      .map((issue) => {
        const path = (issue.path ?? [])
          .map((part) => String((part as { key?: unknown })?.key ?? part))
          .join('.');
        return path ? `${path}: ${issue.message}` : issue.message;
      })
      .join('; ');
    throw new MutatorArgsError(name, detail);
  }
  return result.value;
}

/**
 * A mutator's arguments as JSON text (what the outbox keeps and the push carries), or undefined
 * for no arguments. Throws `MutatorArgsError` for a value JSON cannot carry as it is (a bigint, a
 * cycle): the server would get other arguments than the client ran with.
 *
 * @example
 *   const json = mutatorArgsJson('clearCompleted', { listId }); // '{"listId":"…"}'
 */
export function mutatorArgsJson(name: string, args: unknown): string | undefined {
  if (args === undefined) return undefined;
  try {
    return JSON.stringify(args);
  } catch (error) {
    throw new MutatorArgsError(
      name,
      `they must be JSON (${(error as Error).message}); pass numbers, strings, booleans, null, arrays and plain objects, and bigints or dates as strings`,
      { cause: error },
    );
  }
}
