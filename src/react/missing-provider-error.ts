import { entityKind } from '../entity.js';
import { UsageError } from '../errors.js';

/**
 * A hook of `syncline/react` needed a database or a sync client and found neither an argument nor
 * a `<SynclineProvider>` above it that holds one. The message names the hook, the provider prop
 * to set and the argument that would do instead.
 *
 * @example
 *   try { render(<Badge />); } catch (e) { if (is(e, MissingProviderError)) console.error(e.message); }
 */
export class MissingProviderError extends UsageError {
  static override readonly [entityKind]: string = 'MissingProviderError';

  constructor(
    /** The hook that was called, as it was called: `useSyncStatus()`. */
    readonly hook: string,
    /** What it looked for: `a database` or `a sync client`. */
    what: 'a database' | 'a sync client',
    /** How to give it one without the provider. */
    instead: string,
  ) {
    const prop = what === 'a database' ? 'db={db}' : 'sync={sync}';
    super(
      `${hook} found no ${what.slice(2)}: render the component inside <SynclineProvider ${prop}> ` +
        `(from 'syncline/react'), or ${instead}`,
    );
  }
}
