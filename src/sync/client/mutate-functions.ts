import { type AnyMutators, defineMutators, type Mutators } from '../mutators/define-mutators.js';

/**
 * What `sync.mutate.<name>(args)` resolves to once the mutator ran locally and was recorded: the
 * mutation id, which the `rejected` event names should the server refuse it.
 *
 * @example
 *   const { mutationId } = await sync.mutate.clearCompleted({ listId });
 */
export interface MutationResult {
  readonly mutationId: number;
}

/** A client given no mutators: `sync.mutate` has none. */
export type NoMutators = Mutators<Record<never, unknown>>;

/**
 * One function per mutator, typed by its arguments (optional when the mutator takes none).
 *
 * @example
 *   const mutate: MutateFunctions<typeof mutators> = sync.mutate;
 *   await mutate.clearCompleted({ listId });
 */
export type MutateFunctions<M extends AnyMutators> = {
  readonly [K in keyof M]: M[K] extends { run: (tx: any, args: infer A, ctx: any) => unknown }
    ? undefined extends A
      ? (args?: A) => Promise<MutationResult>
      : (args: A) => Promise<MutationResult>
    : never;
};

/**
 * The `mutate` object of a sync client: for each mutator (checked as `defineMutators` checks
 * them), a function that hands its name, definition and arguments to `call`.
 *
 * @example
 *   this.mutate = mutateFunctions(options.mutators, (name, definition, args) => this.runMutator(name, definition, args));
 */
export function mutateFunctions<M extends AnyMutators>(
  mutators: M | undefined,
  call: (name: string, definition: AnyMutators[string], args: unknown) => Promise<MutationResult>,
): MutateFunctions<M> {
  const out: Record<string, (args?: unknown) => Promise<MutationResult>> = {};
  for (const [name, definition] of Object.entries(defineMutators(mutators ?? {}))) {
    out[name] = (args) => call(name, definition, args);
  }
  return Object.freeze(out) as MutateFunctions<M>;
}
