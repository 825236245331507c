/**
 * The connection limits, counted apart so that sockets nobody signed in on cannot crowd out users:
 * `maxConnections` signed-in connections, `maxConnectionsPerUser` of them for one user, and
 * `maxUnauthenticated` sockets that have not signed in yet.
 *
 * @example
 *   new ConnectionAdmission({ maxConnections: 10_000, maxConnectionsPerUser: 50, maxUnauthenticated: 100 });
 */
export interface AdmissionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxUnauthenticated: number;
}

/**
 * A socket not signed in yet, as admission sees it: whether it may be closed to make room (it has
 * not sent its hello) and how to close it.
 *
 * @example
 *   const waiting: Unauthenticated = { evictable: () => state === 'hello', evict: () => socket.close(4000) };
 */
export interface Unauthenticated {
  evictable(): boolean;
  evict(): void;
}

/**
 * Decides which sockets the server takes. At the upgrade a socket is refused (HTTP 503) only when
 * the signed-in connections are at `maxConnections`; when `maxUnauthenticated` sockets are
 * waiting to sign in, the one that has waited longest without sending its hello is closed to make
 * room, so idle sockets cycle out and a client that says hello right away gets in. A signed-in
 * connection then counts for its user, up to `maxConnectionsPerUser`.
 *
 * @example
 *   const refusal = admission.admitSocket();
 *   if (refusal) return refuseUpgrade(socket, 503, refusal);
 */
export class ConnectionAdmission {
  /** Sockets not signed in, oldest first. */
  private readonly waiting = new Set<Unauthenticated>();
  private upgrading = 0;
  private signedIn = 0;
  private readonly users = new Map<string, number>();

  constructor(private readonly limits: AdmissionLimits) {}

  /** Sockets taken at the upgrade whose WebSocket handshake is not done yet. */
  get upgradingSockets(): number {
    return this.upgrading;
  }

  /** Sockets upgrading or waiting to sign in. */
  get unauthenticated(): number {
    return this.waiting.size + this.upgrading;
  }

  /**
   * At an upgrade: undefined when the socket may be taken (it then counts as upgrading until
   * `upgraded` or `upgradeFailed`), else why not, for the HTTP 503.
   */
  admitSocket(): string | undefined {
    if (this.signedIn >= this.limits.maxConnections) {
      return `the sync server is at its limit of ${this.limits.maxConnections} connections; try again later`;
    }
    if (this.unauthenticated >= this.limits.maxUnauthenticated && !this.evictOldest()) {
      return `the sync server has ${this.limits.maxUnauthenticated} connections waiting to sign in; try again later`;
    }
    this.upgrading++;
    return undefined;
  }

  /** The upgrade went through: the socket waits to sign in. */
  upgraded(socket: Unauthenticated): void {
    this.upgrading--;
    this.waiting.add(socket);
  }

  /** The upgrade failed: its place is free again. */
  upgradeFailed(): void {
    this.upgrading--;
  }

  /**
   * The socket signed in as `userId`: undefined when it may stay (it then counts for the user),
   * else why not.
   */
  signIn(socket: Unauthenticated, userId: string): string | undefined {
    const mine = this.users.get(userId) ?? 0;
    if (mine >= this.limits.maxConnectionsPerUser) {
      return `user ${JSON.stringify(userId)} has ${mine} connections open, the limit; close one or try again later`;
    }
    if (this.signedIn >= this.limits.maxConnections) {
      return `the sync server is at its limit of ${this.limits.maxConnections} connections; try again later`;
    }
    this.waiting.delete(socket);
    this.users.set(userId, mine + 1);
    this.signedIn++;
    return undefined;
  }

  /** The socket closed: before signing in (`userId` undefined) or after. */
  leave(socket: Unauthenticated, userId: string | undefined): void {
    if (userId === undefined) {
      this.waiting.delete(socket);
      return;
    }
    const mine = (this.users.get(userId) ?? 1) - 1;
    if (mine > 0) this.users.set(userId, mine);
    else this.users.delete(userId);
    this.signedIn--;
  }

  private evictOldest(): boolean {
    for (const socket of this.waiting) {
      if (!socket.evictable()) continue;
      this.waiting.delete(socket);
      socket.evict();
      return true;
    }
    return false;
  }
}
