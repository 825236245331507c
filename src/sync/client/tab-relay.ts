import { randomUuid } from '../../random-uuid.js';
import type { ShapeJson } from '../protocol/messages.js';
import type { RejectedEvent } from './ack-apply.js';
import type { ShapeReports } from './shape-subscriptions.js';
import type { SnapshotProgress } from './snapshot-apply.js';
import type { SyncStatus } from './sync-events.js';

/** What the sync clients of the tabs sharing one database say on their BroadcastChannel. */
type RelayMessage =
  | { readonly k: 'hello'; readonly from: string }
  | { readonly k: 'leader'; readonly tab: string; readonly status: SyncStatus }
  | { readonly k: 'status'; readonly status: SyncStatus }
  | { readonly k: 'progress'; readonly progress: SnapshotProgress }
  | { readonly k: 'rejected'; readonly event: RejectedEvent }
  | { readonly k: 'error'; readonly name: string; readonly message: string }
  | { readonly k: 'settled'; readonly firstSeq: number | undefined }
  | { readonly k: 'held'; readonly shapes: readonly ShapeJson[] }
  | { readonly k: 'shape-progress'; readonly id: string; readonly progress: SnapshotProgress }
  | { readonly k: 'refused'; readonly id: string; readonly name: string; readonly message: string }
  | { readonly k: 'wants'; readonly from: string; readonly shapes: readonly ShapeJson[] }
  | { readonly k: 'push' }
  | { readonly k: 'caught-up?'; readonly from: string; readonly id: number }
  | { readonly k: 'caught-up'; readonly to: string; readonly id: number };

/** What the relay needs of its sync client. */
export interface RelayHost {
  /** This tab holds the sync lock now: it connects, and syncs for every tab. */
  lead(): void;
  /** Leader: its status now (for a tab that just said hello). */
  currentStatus(): SyncStatus;
  /** Follower: what the syncing tab reports. */
  status(status: SyncStatus): void;
  progress(progress: SnapshotProgress): void;
  rejected(event: RejectedEvent): void;
  error(error: Error): void;
  settled(firstSeq: number | undefined): void;
  /** Follower: what the syncing tab reports of the shapes. */
  readonly shapes: ShapeReports;
  /** Follower: the shapes this tab wants (its options' and its subscriptions). */
  wanted(): readonly ShapeJson[];
  /** Leader: another tab wants these shapes now (and no others of its own). */
  tabWants(tab: string, shapes: readonly ShapeJson[]): void;
  /** Leader: push what the outbox holds (another tab waits in `flush()`). */
  push(): void;
  /** Leader: resolves once caught up with the server (another tab waits in `caughtUp()`). */
  caughtUp(): Promise<void>;
}

function lockName(kind: string, id: string): string {
  return `syncline-sync${kind}:${id}`;
}

/**
 * The sync clients of the browser tabs that share one database (see `sqliteWasm({ name })`)
 * elect one of them to sync: the one holding a Web Lock named after the database connects, and
 * the others follow it over a BroadcastChannel. Local writes of every tab reach the one outbox in
 * the shared database, and the syncing tab hears of them through the database's change events;
 * the others mirror its status and events, send it their shapes, and ask it when they wait in
 * `flush()` or `caughtUp()`. When the syncing tab stops or closes, the lock passes to the next
 * started client, which reads the sync state from the database and connects: the outbox is
 * there, so no write is lost, and its mutation ids make the server apply each batch once.
 */
export class TabRelay {
  private readonly channel: BroadcastChannel;
  private readonly tab = randomUuid();
  private leader: string | undefined;
  private leading = false;
  private waiting: AbortController | undefined;
  private release: (() => void) | undefined;
  private nextAsk = 1;
  private readonly asks = new Map<number, () => void>();
  /** Leader: the tabs whose shapes it holds for them, watched until they close. */
  private readonly followers = new Map<string, AbortController>();
  private started = false;

  private constructor(
    private readonly name: string,
    private readonly host: RelayHost,
  ) {
    this.channel = new BroadcastChannel(lockName('', name));
    this.channel.onmessage = (event: MessageEvent<RelayMessage>) => this.heard(event.data);
    // Held for the tab's life: the syncing tab watches it to drop this tab's shapes once it closes.
    navigator.locks.request(lockName('-tab', this.tab), () => new Promise<void>(() => {})).catch(() => {});
  }

  /** A relay for a database shared between tabs, or undefined where there is none. */
  static for(sharedName: string | undefined, host: RelayHost): TabRelay | undefined {
    if (sharedName === undefined) return undefined;
    if (typeof BroadcastChannel !== 'function' || typeof navigator?.locks?.request !== 'function') {
      return undefined;
    }
    return new TabRelay(sharedName, host);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Started and another tab's client syncs (or is about to): this one leaves the outbox to it. */
  get isFollowing(): boolean {
    return this.started && !this.leading;
  }

  /** Starts following the syncing tab, and queues to become it. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const waiting = new AbortController();
    this.waiting = waiting;
    navigator.locks
      .request(lockName('', this.name), { signal: waiting.signal }, () => {
        this.waiting = undefined;
        this.leading = true;
        this.leader = this.tab;
        return new Promise<void>((release) => {
          this.release = release;
          this.host.lead();
        });
      })
      .catch(() => {}); // aborted by stop()
    this.post({ k: 'hello', from: this.tab });
  }

  /** Stops syncing for the others (the next tab in the queue takes over), or stops queueing. */
  stop(): void {
    this.started = false;
    this.waiting?.abort();
    this.waiting = undefined;
    this.leading = false;
    this.release?.();
    this.release = undefined;
    this.leader = undefined;
    for (const watch of this.followers.values()) watch.abort();
    this.followers.clear();
  }

  /** Leader: tells the followers it syncs now. */
  announce(): void {
    if (this.leading) this.post({ k: 'leader', tab: this.tab, status: this.host.currentStatus() });
  }

  /** Leader: passes what happened on to the followers. */
  status(status: SyncStatus): void {
    if (this.leading) this.post({ k: 'status', status });
  }
  progress(progress: SnapshotProgress): void {
    if (this.leading) this.post({ k: 'progress', progress });
  }
  rejected(event: RejectedEvent): void {
    if (this.leading) this.post({ k: 'rejected', event });
  }
  error(error: Error): void {
    if (this.leading) this.post({ k: 'error', name: error.name, message: error.message });
  }
  settled(firstSeq: number | undefined): void {
    if (this.leading) this.post({ k: 'settled', firstSeq });
  }
  /** Leader: what the session reports of the shapes, for the followers' subscriptions. */
  readonly reports: ShapeReports = {
    holding: (shapes) => {
      if (this.leading) this.post({ k: 'held', shapes });
    },
    progress: (id, progress) => {
      if (this.leading) this.post({ k: 'shape-progress', id, progress });
    },
    refused: (id, error) => {
      if (this.leading) this.post({ k: 'refused', id, name: error.name, message: error.message });
    },
  };

  /** Follower: the shapes this tab wants changed. */
  wantsChanged(): void {
    if (this.started && !this.leading && this.leader !== undefined) {
      this.post({ k: 'wants', from: this.tab, shapes: this.host.wanted() });
    }
  }

  /** Follower: asks the syncing tab to push (a `flush()` waits). */
  askPush(): void {
    if (!this.leading) this.post({ k: 'push' });
  }

  /** Follower: resolves once the syncing tab (this one or the next) has caught up. */
  askCaughtUp(): Promise<void> {
    const id = this.nextAsk++;
    return new Promise((resolve) => {
      this.asks.set(id, resolve);
      if (this.leader !== undefined) this.post({ k: 'caught-up?', from: this.tab, id });
    });
  }

  private heard(message: RelayMessage): void {
    if (!this.started) return;
    if (this.leading) {
      this.heardAsLeader(message);
      return;
    }
    switch (message.k) {
      case 'leader':
        if (message.tab === this.leader) return;
        this.leader = message.tab;
        this.host.status(message.status);
        // A new syncing tab knows nothing of this one: tell it again what it waits for.
        this.post({ k: 'wants', from: this.tab, shapes: this.host.wanted() });
        for (const id of this.asks.keys()) this.post({ k: 'caught-up?', from: this.tab, id });
        return;
      case 'status':
        this.host.status(message.status);
        return;
      case 'progress':
        this.host.progress(message.progress);
        return;
      case 'rejected':
        this.host.rejected(message.event);
        return;
      case 'error':
        this.host.error(revive(message.name, message.message));
        return;
      case 'settled':
        this.host.settled(message.firstSeq);
        return;
      case 'held':
        this.host.shapes.holding(message.shapes);
        return;
      case 'shape-progress':
        this.host.shapes.progress(message.id, message.progress);
        return;
      case 'refused':
        this.host.shapes.refused(message.id, revive(message.name, message.message));
        return;
      case 'caught-up': {
        if (message.to !== this.tab) return;
        const resolve = this.asks.get(message.id);
        this.asks.delete(message.id);
        resolve?.();
        return;
      }
    }
  }

  private heardAsLeader(message: RelayMessage): void {
    switch (message.k) {
      case 'hello':
        this.post({ k: 'leader', tab: this.tab, status: this.host.currentStatus() });
        return;
      case 'wants':
        this.watch(message.from);
        this.host.tabWants(message.from, message.shapes);
        return;
      case 'push':
        this.host.push();
        return;
      case 'caught-up?':
        // Not answered when this tab stops first: the asking tab asks the next one.
        this.host.caughtUp().then(
          () => {
            if (this.leading) this.post({ k: 'caught-up', to: message.from, id: message.id });
          },
          () => {},
        );
        return;
    }
  }

  /** Drops a follower's shapes once its tab closes (its tab lock comes free). */
  private watch(tab: string): void {
    if (this.followers.has(tab)) return;
    const watch = new AbortController();
    this.followers.set(tab, watch);
    navigator.locks
      .request(lockName('-tab', tab), { signal: watch.signal }, () => {
        this.followers.delete(tab);
        this.host.tabWants(tab, []);
      })
      .catch(() => {});
  }

  private post(message: RelayMessage): void {
    this.channel.postMessage(message);
  }

  close(): void {
    this.stop();
    this.channel.close();
  }
}

function revive(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}
