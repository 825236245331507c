/** The longest delay `setTimeout` takes (about 24.8 days); a later expiry is timed again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * When a connection's token expires: `watch(at)` calls `expired` at that time (ms since the
 * epoch), and `passed()` says whether it has come, for a check right before work a timer firing
 * late must not let through (a push). The connection closes itself in `expired`.
 *
 * @example
 *   const expiry = new TokenExpiry(() => close(SYNC_CLOSE_CODES.tokenExpired));
 *   expiry.watch(tokenExpiry(user));
 *   if (expiry.passed()) return;
 */
export class TokenExpiry {
  private at: number | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly expired: () => void) {}

  /** Starts timing `at` (undefined: the token never expires). */
  watch(at: number | undefined): void {
    this.stop();
    this.at = at;
    this.arm();
  }

  /** True once the token has expired. */
  passed(): boolean {
    return this.at !== undefined && Date.now() >= this.at;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.at === undefined) return;
    this.timer = setTimeout(
      () => {
        if (this.passed()) this.expired();
        else this.arm();
      },
      Math.min(Math.max(0, this.at - Date.now()), MAX_TIMER_MS),
    );
    this.timer.unref?.();
  }
}
