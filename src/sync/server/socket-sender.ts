import WebSocket from 'ws';

/** Below this many buffered bytes a socket counts as drained: the next chunk or batch may go. */
export const DRAINED_BYTES = 1 << 20;

/**
 * The bounds on what one connection may leave unread: `maxBufferedBytes` (no message is sent while
 * more than this waits in the socket's buffer) and `drainTimeoutMs` (how long sends may wait
 * without a byte of them being taken by the client).
 *
 * @example
 *   const limits: SenderLimits = { maxBufferedBytes: 16 << 20, drainTimeoutMs: 30_000 };
 */
export interface SenderLimits {
  readonly maxBufferedBytes: number;
  readonly drainTimeoutMs: number;
}

/**
 * Sends a connection's frames and keeps what the client leaves unread bounded, in bytes and in
 * time. Data (snapshot chunks, changes) already waits for the socket to drain; the bounds catch
 * what does not (error replies to a flood of bad messages) and a client that stops reading while
 * the server waits on it, holding a snapshot's transaction open. Past either bound `stalled` is
 * called once, with the reason, and the connection closes; every send still waiting then
 * resolves, so no queue waits forever on a dead socket.
 *
 * @example
 *   const sender = new SocketSender(socket, limits, (reason) => close(1013, reason));
 *   await sender.send(JSON.stringify(message));
 */
export class SocketSender {
  /** Resolvers of sends the socket has not taken yet, in order. */
  private readonly waiting = new Set<() => void>();
  private lastSend: Promise<void> = Promise.resolve();
  private lastProgress = Date.now();
  private lastBuffered = 0;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private stopped = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly limits: SenderLimits,
    private readonly stalled: (reason: string) => void,
  ) {
    socket.once('close', () => this.stop());
  }

  /** True while more than `DRAINED_BYTES` wait to be sent: the caller should wait on `drained`. */
  get full(): boolean {
    return this.socket.bufferedAmount > DRAINED_BYTES;
  }

  /**
   * Sends one text frame (bytes may be shared with other connections); resolves once the socket
   * took it, or the connection closed. Past `maxBufferedBytes` nothing is sent: the client has
   * not read what it was sent, and is dropped.
   */
  send(data: string | Buffer): Promise<void> {
    if (this.stopped || this.socket.readyState !== WebSocket.OPEN) return Promise.resolve();
    const buffered = this.socket.bufferedAmount;
    if (buffered > this.limits.maxBufferedBytes) {
      this.stall(`read too slowly: over ${this.limits.maxBufferedBytes} bytes unread`);
      return Promise.resolve();
    }
    if (this.waiting.size === 0) {
      this.lastProgress = Date.now();
      this.lastBuffered = buffered;
    }
    const sent = new Promise<void>((resolve) => {
      const done = () => {
        if (!this.waiting.delete(done)) return;
        this.lastProgress = Date.now();
        resolve();
      };
      this.waiting.add(done);
      this.socket.send(data, { binary: false }, done);
    });
    this.lastSend = sent;
    this.watch();
    return sent;
  }

  /** Resolves once everything sent so far left the buffer, or at least `DRAINED_BYTES` of it did. */
  async drained(): Promise<void> {
    if (this.full) await this.lastSend;
  }

  /**
   * Checks now and then that a socket with sends waiting makes progress (a send taken, fewer bytes
   * buffered); `drainTimeoutMs` without any is a client that stopped reading.
   */
  private watch(): void {
    if (this.watchdog) return;
    const every = Math.max(10, Math.floor(this.limits.drainTimeoutMs / 4));
    this.watchdog = setInterval(() => {
      if (this.waiting.size === 0) {
        clearInterval(this.watchdog);
        this.watchdog = undefined;
        return;
      }
      const buffered = this.socket.bufferedAmount;
      if (buffered < this.lastBuffered) this.lastProgress = Date.now();
      this.lastBuffered = buffered;
      if (Date.now() - this.lastProgress > this.limits.drainTimeoutMs) {
        this.stall(`read nothing for ${this.limits.drainTimeoutMs} ms`);
      }
    }, every);
    this.watchdog.unref?.();
  }

  private stall(reason: string): void {
    if (this.stopped) return;
    this.stop();
    this.stalled(reason);
  }

  /** Lets go of every waiting send: the connection is gone or going. */
  private stop(): void {
    this.stopped = true;
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    for (const done of [...this.waiting]) done();
  }
}
