import type { LiveQuery } from '../live/live-query.js';
import { resultsEqual } from '../live/result-equality.js';

/** Where a live query hook stands: waiting for the first result, showing one, or its last run failed. */
export type LiveQueryStatus = 'loading' | 'ready' | 'error';

/**
 * What `useLiveQuery` returns: the latest rows (undefined while loading), the error of the last
 * run when it failed (the rows before it stay in `data`; the live query recovers on the next
 * change), and the status.
 *
 * @example
 *   const { data, error, status } = useLiveQuery(db.select().from(todos));
 */
export interface LiveQueryState<T> {
  readonly data: T | undefined;
  readonly error: unknown;
  readonly status: LiveQueryStatus;
}

const loading: LiveQueryState<never> = Object.freeze({
  data: undefined,
  error: undefined,
  status: 'loading',
});

/** How long a suspended render keeps its live query running for the component to mount and take it over. */
const SUSPENDED_HOLD_MS = 5_000;

/**
 * One live query as a `useSyncExternalStore` store. It subscribes to the live query while anyone
 * holds it (mounted components, a suspended render) and unsubscribes when the last lets go, so a
 * store nobody subscribes to costs nothing: the hooks can make one during render.
 */
export class LiveQueryStore<T> {
  private state: LiveQueryState<T>;
  private readonly listeners = new Set<() => void>();
  private holds = 0;
  private unsubscribe: (() => void) | undefined;
  /** The first result since the live query was (re)subscribed: it may repeat the rows shown. */
  private resubscribed = false;
  private settled: { promise: Promise<void>; resolve: () => void } | undefined;
  private suspendedHold: (() => void) | undefined;

  /**
   * @param onIdle called when the last holder lets go (the store may be held again later).
   */
  constructor(
    private readonly live: LiveQuery<T>,
    private readonly onIdle?: () => void,
  ) {
    // An identical live query already running elsewhere has rows to show at once.
    const value = live.value;
    this.state = value === undefined ? loading : { data: value, error: undefined, status: 'ready' };
  }

  /** For `useSyncExternalStore`: the listener hears every change of `getSnapshot()`. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    const release = this.hold();
    // A mounted component keeps the live query running now: a suspended render's hold can go.
    this.suspendedHold?.();
    return () => {
      this.listeners.delete(listener);
      release();
    };
  };

  /** The current state: the same object until the live query reports something new. */
  readonly getSnapshot = (): LiveQueryState<T> => this.state;

  /**
   * For a render that suspends until the first result: keeps the live query running until a
   * component subscribes, or for a while after the result came should none ever mount (the render
   * was abandoned). Resolves once the state is no longer `loading`.
   */
  suspend(): Promise<void> {
    if (this.state.status !== 'loading') return Promise.resolve();
    if (!this.settled) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.settled = { promise, resolve };
    }
    if (!this.suspendedHold) {
      const release = this.hold();
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.suspendedHold = () => {
        clearTimeout(timer);
        this.suspendedHold = undefined;
        release();
      };
      const hold = this.suspendedHold;
      void this.settled.promise.then(() => {
        if (this.suspendedHold === hold) timer = setTimeout(hold, SUSPENDED_HOLD_MS);
      });
    }
    return this.settled.promise;
  }

  private hold(): () => void {
    if (this.holds++ === 0) {
      this.resubscribed = true;
      this.unsubscribe = this.live.subscribe(
        (value) => this.received(value),
        (error) => this.update({ data: this.state.data, error, status: 'error' }),
      );
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds > 0) return;
      this.unsubscribe?.();
      this.unsubscribe = undefined;
      this.onIdle?.();
    };
  }

  private received(value: T): void {
    // The live query emits only changed results, but after a resubscribe (StrictMode's second
    // mount, a suspended render handing over) its first result may be the rows already shown.
    const repeat = this.resubscribed && this.state.status === 'ready' && resultsEqual(this.state.data, value);
    this.resubscribed = false;
    if (!repeat) this.update({ data: value, error: undefined, status: 'ready' });
  }

  private update(state: LiveQueryState<T>): void {
    this.state = state;
    this.settled?.resolve();
    this.settled = undefined;
    for (const listener of [...this.listeners]) listener();
  }

  /** Whether any component or suspended render holds the live query (the suspense cache asks). */
  get held(): boolean {
    return this.holds > 0;
  }
}
