import { UsageError } from '../../errors.js';
import type { ShapeJson } from '../protocol/messages.js';
import type { SnapshotProgress } from './snapshot-apply.js';

/**
 * Options of `sync.subscribe()`: `ttl` keeps the shape (its rows on the device, kept fresh) for
 * that many milliseconds after its last subscription is released, so navigating back and forth
 * does not snapshot it again.
 *
 * @example
 *   sync.subscribe({ table: todos, where: eq(todos.listId, id) }, { ttl: 30_000 });
 */
export interface SubscribeOptions {
  readonly ttl?: number;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

interface Entry {
  readonly shape: ShapeJson;
  /** Handles not released yet, plus one for a shape of `syncClient()`'s options (never released). */
  refs: number;
  ttlMs: number;
  ttlTimer: ReturnType<typeof setTimeout> | undefined;
  held: boolean;
  readonly waiters: Waiter[];
  readonly listeners: Set<(progress: SnapshotProgress) => void>;
}

/**
 * One `sync.subscribe()`: `caughtUp()` resolves once the shape's rows are on the device (its
 * snapshot applied, or held from an earlier run) and the client has caught up with the server;
 * `on('progress', ...)` hears its snapshot's progress; `unsubscribe()` releases it (a second call
 * does nothing). When the last subscription of a shape is released (and its `ttl` passed), the
 * server stops sending it and the rows no other shape holds leave the device, except rows with
 * pending local writes.
 *
 * @example
 *   const sub = sync.subscribe({ table: todos, where: eq(todos.listId, listId) });
 *   await sub.caughtUp();
 *   sub.unsubscribe();
 */
export class ShapeSubscription {
  private released = false;

  constructor(
    /** The shape's id in the protocol. */
    readonly id: string,
    private readonly owner: ShapeSubscriptions,
    private readonly caughtUpAll: () => Promise<void>,
  ) {}

  /** Resolves once the shape's rows are here and the client caught up; rejects when the server refused it. */
  async caughtUp(): Promise<void> {
    await this.owner.heldPromise(this.id);
    await this.caughtUpAll();
  }

  /** Listens to the progress of the shape's snapshot; returns the unsubscribe. */
  on(event: 'progress', listener: (progress: SnapshotProgress) => void): () => void {
    if (event !== 'progress')
      throw new UsageError(`ShapeSubscription.on(): no event "${String(event)}"; use "progress"`);
    return this.owner.listen(this.id, listener);
  }

  /** Releases this subscription; a second call does nothing. */
  unsubscribe(): void {
    if (this.released) return;
    this.released = true;
    this.owner.release(this.id);
  }
}

function sameShape(a: ShapeJson, b: ShapeJson): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The shapes a sync client wants: those of its options and those subscribed at runtime, with a
 * count of subscriptions each (the same shape twice is one), their ttl, and who waits for them.
 * `changed` is called whenever the set changes, for the session to tell the server.
 *
 * @example
 *   const wanted = new ShapeSubscriptions(options.shapes, () => session?.syncShapes());
 */
export class ShapeSubscriptions {
  private readonly entries = new Map<string, Entry>();
  /** Hears what the session reports of the shapes (the tab that syncs tells the other tabs). */
  reports: ShapeReports | undefined;

  constructor(
    initial: readonly ShapeJson[],
    private readonly changed: () => void,
  ) {
    for (const shape of initial) this.entries.set(shape.id, this.entry(shape, 1));
  }

  private entry(shape: ShapeJson, refs: number): Entry {
    return { shape, refs, ttlMs: 0, ttlTimer: undefined, held: false, waiters: [], listeners: new Set() };
  }

  /** The shapes wanted now. */
  active(): ShapeJson[] {
    return [...this.entries.values()].map((e) => e.shape);
  }

  /** The shapes wanted that the device holds. */
  held(): ShapeJson[] {
    return [...this.entries.values()].filter((e) => e.held).map((e) => e.shape);
  }

  /** Adds a subscription of `shape` (one more reference when it is wanted already). */
  add(shape: ShapeJson, ttlMs: number): void {
    const found = this.entries.get(shape.id);
    if (found && !sameShape(found.shape, shape)) {
      throw new UsageError(
        `subscribe(): shape id "${shape.id}" is already used by another shape; give this one its own id`,
      );
    }
    if (found) {
      found.refs++;
      found.ttlMs = Math.max(found.ttlMs, ttlMs);
      if (found.ttlTimer) clearTimeout(found.ttlTimer);
      found.ttlTimer = undefined;
      return;
    }
    const entry = this.entry(shape, 1);
    entry.ttlMs = ttlMs;
    this.entries.set(shape.id, entry);
    this.changed();
  }

  release(id: string): void {
    const entry = this.entries.get(id);
    if (!entry || --entry.refs > 0) return;
    const drop = () => {
      if (this.entries.get(id) !== entry || entry.refs > 0) return;
      this.entries.delete(id);
      for (const waiter of entry.waiters.splice(0)) {
        waiter.reject(new UsageError(`shape "${id}" was unsubscribed before its rows arrived`));
      }
      this.changed();
    };
    if (entry.ttlMs > 0) {
      entry.ttlTimer = setTimeout(drop, entry.ttlMs);
      (entry.ttlTimer as { unref?: () => void }).unref?.();
    } else drop();
  }

  /** Resolves once the shape `id` is held; rejects when it is refused or released first. */
  heldPromise(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return Promise.reject(new UsageError(`shape "${id}" is not subscribed`));
    if (entry.held) return Promise.resolve();
    return new Promise((resolve, reject) => entry.waiters.push({ resolve, reject }));
  }

  listen(id: string, listener: (progress: SnapshotProgress) => void): () => void {
    const entry = this.entries.get(id);
    if (!entry) return () => {};
    entry.listeners.add(listener);
    return () => entry.listeners.delete(listener);
  }

  /** The session reports which shapes the device holds now (their rows are here up to the cursor). */
  holding(shapes: readonly ShapeJson[]): void {
    this.reports?.holding(shapes);
    for (const shape of shapes) {
      const entry = this.entries.get(shape.id);
      if (!entry || entry.held || !sameShape(entry.shape, shape)) continue;
      entry.held = true;
      for (const waiter of entry.waiters.splice(0)) waiter.resolve();
    }
  }

  progress(id: string, progress: SnapshotProgress): void {
    this.reports?.progress(id, progress);
    for (const listener of this.entries.get(id)?.listeners ?? []) listener(progress);
  }

  /** The server refused the shape: its subscriptions fail and it is no longer wanted. */
  refused(id: string, error: Error): void {
    this.reports?.refused(id, error);
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    if (entry.ttlTimer) clearTimeout(entry.ttlTimer);
    for (const waiter of entry.waiters.splice(0)) waiter.reject(error);
  }
}

/** What a session reports of the shapes, as `ShapeSubscriptions` passes it on. */
export interface ShapeReports {
  holding(shapes: readonly ShapeJson[]): void;
  progress(id: string, progress: SnapshotProgress): void;
  refused(id: string, error: Error): void;
}

/** Whether two shape lists name the same shapes (by id and definition). */
export function findShape(list: readonly ShapeJson[], shape: ShapeJson): boolean {
  return list.some((other) => sameShape(other, shape));
}
