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
