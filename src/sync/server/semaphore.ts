/**
 * At most `slots` holders at once; the others wait their turn, first come first served. The sync
 * server runs snapshots through one, so that snapshots (each holds a pooled connection in a
 * transaction for as long as its client takes to read) leave connections free for handshakes and
 * pushes.
 *
 * @example
 *   const snapshots = new Semaphore(4);
 *   const release = await snapshots.acquire();
 *   try { await readSnapshot(...); } finally { release(); }
 */
export class Semaphore {
  private held = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly slots: number) {}

  /** Resolves with the release function once a slot is free; call it exactly once. */
  async acquire(): Promise<() => void> {
    if (this.held < this.slots) {
      this.held++;
    } else {
      // The slot is handed over by `release`, so `held` stays as it is.
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next();
      else this.held--;
    };
  }
}

/**
 * The server's snapshot slots, shared fairly: at most `slots` snapshots at once, and at most
 * `perUser` of them for one user (half the slots, at least one), so that one user's expensive or
 * unread snapshots leave room for everyone else's first sync. A user's snapshots past that share
 * wait in a queue of their own, holding no server slot.
 *
 * @example
 *   const release = await snapshots.acquire(user.userId);
 *   try { await readSnapshot(...); } finally { release(); }
 */
export class SnapshotSlots {
  private readonly all: Semaphore;
  private readonly users = new Map<string, { semaphore: Semaphore; holders: number }>();
  readonly perUser: number;

  constructor(slots: number) {
    this.all = new Semaphore(slots);
    this.perUser = Math.max(1, Math.floor(slots / 2));
  }

  /** Resolves with the release once the user's share and a server slot are both free. */
  async acquire(userId: string): Promise<() => void> {
    let user = this.users.get(userId);
    if (!user) {
      user = { semaphore: new Semaphore(this.perUser), holders: 0 };
      this.users.set(userId, user);
    }
    user.holders++;
    const entry = user;
    const releaseUser = await entry.semaphore.acquire();
    let releaseAll: () => void;
    try {
      releaseAll = await this.all.acquire();
    } catch (error) {
      releaseUser();
      throw error;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      releaseAll();
      releaseUser();
      // A user with nothing held or waiting leaves no entry behind.
      if (--entry.holders === 0 && this.users.get(userId) === entry) this.users.delete(userId);
    };
  }
}
