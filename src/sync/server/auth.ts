import type { IncomingHttpHeaders } from 'node:http';
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyOptions, jwtVerify } from 'jose';
import { AuthError, UsageError } from '../../errors.js';
import type { SyncUser } from './rules.js';

/**
 * What an `authenticate` function is given about a connection: the token (from `hello.token`,
 * else an `Authorization: Bearer` header, else, only with `auth.allowTokenInUrl`, the `token`
 * query parameter; undefined when none was sent), the upgrade request's headers and URL, and the
 * peer's address.
 *
 * @example
 *   authenticate: async ({ token }) => (token === 'let-me-in' ? { userId: 'u1' } : undefined)
 */
export interface AuthRequest {
  readonly token: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly url: string;
  readonly remoteAddress: string | undefined;
}

/**
 * Where a token may come from, for every kind of `auth`: `allowTokenInUrl` (default false) also
 * takes it from a `?token=` query parameter, which proxies and servers write to their logs, so it
 * is refused unless you opt in.
 *
 * @example
 *   const auth: SyncAuth = { jwtSecret, allowTokenInUrl: true };
 */
export interface TokenPlaces {
  readonly allowTokenInUrl?: boolean;
}

/**
 * What a JWT must hold besides a good signature: `issuer` and `audience`, when given, must match
 * its `iss` and `aud`; `requireExp` (default true) refuses a token without an `exp` claim, since a
 * token that never expires cannot be taken back.
 *
 * @example
 *   const claims: JwtClaimRules = { audience: 'todo-app', requireExp: true };
 */
export interface JwtClaimRules extends TokenPlaces {
  readonly issuer?: string;
  readonly audience?: string;
  readonly requireExp?: boolean;
}

/**
 * How the sync server tells who a client is. A JWT signed with a shared secret (HS256, at least
 * `MIN_SECRET_BYTES` bytes), a JWT checked against a JSON Web Key Set fetched from `jwksUrl`
 * (cached, refreshed on unknown keys), or your own `authenticate` returning the user (undefined
 * refuses; so does throwing an `AuthError`, whose message the client gets; any other error is the
 * server failing). For JWTs the user id is the `sub` claim and every other claim is on the user
 * too; see `JwtClaimRules` for `issuer`, `audience` and `requireExp`. A connection is closed with
 * `SYNC_CLOSE_CODES.tokenExpired` when its user's `exp` (seconds since the epoch; a JWT's claim,
 * or a number `authenticate` puts on the user) passes.
 *
 * @example
 *   const auth: SyncAuth = { jwtSecret: process.env.JWT_SECRET!, audience: 'todo-app' };
 */
export type SyncAuth =
  | ({ readonly jwtSecret: string } & JwtClaimRules)
  | ({ readonly jwksUrl: string } & JwtClaimRules)
  | ({
      readonly authenticate: (request: AuthRequest) => Promise<SyncUser | undefined> | SyncUser | undefined;
    } & TokenPlaces);

/**
 * The shortest `jwtSecret` the server takes, in bytes (UTF-8): 256 bits, as RFC 7518 asks of HS256
 * keys. A shorter secret can be found by trying.
 *
 * @example
 *   if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) throw new Error('make a longer secret');
 */
export const MIN_SECRET_BYTES = 32;

/**
 * Checks one connection's credentials and returns its user, or throws `AuthError` saying why
 * (missing, expired, bad signature, wrong issuer ...), in words fit to send to the client.
 *
 * @example
 *   const user = await authenticator({ token, headers, url, remoteAddress });
 */
export type Authenticator = (request: AuthRequest) => Promise<SyncUser>;

const HMAC = ['HS256', 'HS384', 'HS512'];

/**
 * The token a connection presented: `hello.token` first, then an `Authorization: Bearer` header,
 * then, only when `allowUrl` is set, a `token` query parameter on the URL (browsers cannot set
 * headers on a WebSocket; they send the token in `hello`).
 *
 * @example
 *   tokenOf(hello.token, request.headers, request.url); // 'eyJhbGciOi…'
 */
export function tokenOf(
  helloToken: string | undefined,
  headers: IncomingHttpHeaders,
  url: string,
  allowUrl = false,
): string | undefined {
  if (helloToken) return helloToken;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
  if (bearer) return bearer[1];
  if (!allowUrl) return undefined;
  const query = new URL(url, 'http://localhost').searchParams.get('token');
  return query || undefined;
}

/**
 * When the user's token expires, in ms since the epoch: its numeric `exp` claim (seconds), or
 * undefined when it has none.
 *
 * @example
 *   const at = tokenExpiry(user); // 1735732800000
 */
export function tokenExpiry(user: SyncUser): number | undefined {
  const exp = (user as { exp?: unknown }).exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
}

function describeJoseError(error: unknown, payload: () => JWTPayload | undefined): string {
  const { code, claim, message } = error as { code?: string; claim?: string; message?: string };
  switch (code) {
    case 'ERR_JWT_EXPIRED': {
      const exp = payload()?.exp;
      const when = typeof exp === 'number' ? ` at ${new Date(exp * 1000).toISOString()}` : '';
      return `the token expired${when}; get a new token and connect again`;
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return "the token's signature is bad: it was not signed with the key this server trusts (check that the token issuer and the server share the secret or key set)";
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `the token's "${claim}" claim was refused (${message}); get a token made for this server`;
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return `the token's algorithm is not accepted here (${message})`;
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return "no key of the server's key set matches the token (its kid is unknown); get a new token";
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'the token is malformed: expected a JWT (three base64url parts separated by dots)';
    default:
      return `the token could not be verified (${message ?? String(error)})`;
  }
}

/** The claims of a token, unverified: only to say when an expired token expired. */
function unverifiedClaims(token: string): JWTPayload | undefined {
  try {
    const part = token.split('.')[1];
    return part ? (JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as JWTPayload) : undefined;
  } catch {
    return undefined;
  }
}

function userFromClaims(payload: JWTPayload): SyncUser {
  if (typeof payload.sub !== 'string' || payload.sub === '') {
    throw new AuthError('the token has no "sub" claim: it must name the user (its id)');
  }
  return { ...payload, userId: payload.sub } as SyncUser;
}

function missingToken(): AuthError {
  return new AuthError('no token: send one in hello.token, or in an "Authorization: Bearer <token>" header');
}

/**
 * Builds the `Authenticator` for the `auth` option of `createSyncServer`, checking the option
 * first: a UsageError says what is wrong with it (none or several of jwtSecret, jwksUrl and
 * authenticate; a secret shorter than `MIN_SECRET_BYTES`; a URL that does not parse).
 *
 * @example
 *   const authenticate = createAuthenticator({ jwtSecret: process.env.JWT_SECRET! });
 *   const user = await authenticate({ token, headers: {}, url: '/sync', remoteAddress: undefined });
 */
export function createAuthenticator(auth: SyncAuth): Authenticator {
  if (auth === null || typeof auth !== 'object') {
    throw new UsageError(
      'createSyncServer(): give auth: { jwtSecret }, { jwksUrl } or { authenticate(request) }',
    );
  }
  const kinds = (['jwtSecret', 'jwksUrl', 'authenticate'] as const).filter((k) => k in auth);
  if (kinds.length !== 1) {
    throw new UsageError(
      `createSyncServer(): auth takes exactly one of jwtSecret, jwksUrl or authenticate${kinds.length > 1 ? `, not ${kinds.join(' and ')}` : ''}`,
    );
  }
  if ('authenticate' in auth) return customAuthenticator(auth.authenticate);
  const options: JWTVerifyOptions = {};
  if (auth.issuer !== undefined) options.issuer = auth.issuer;
  if (auth.audience !== undefined) options.audience = auth.audience;
  if ('jwtSecret' in auth) {
    if (typeof auth.jwtSecret !== 'string' || auth.jwtSecret.length === 0) {
      throw new UsageError(
        'createSyncServer(): auth.jwtSecret is empty; give the secret tokens are signed with',
      );
    }
    const key = new TextEncoder().encode(auth.jwtSecret);
    if (key.length < MIN_SECRET_BYTES) {
      throw new UsageError(
        `createSyncServer(): auth.jwtSecret is ${key.length} bytes long; an HS256 secret needs at least ${MIN_SECRET_BYTES} bytes of randomness (make one with: openssl rand -base64 32)`,
      );
    }
    const requireExp = auth.requireExp ?? true;
    return jwtAuthenticator((token) => jwtVerify(token, key, { ...options, algorithms: HMAC }), requireExp);
  }
  let url: URL;
  try {
    url = new URL(auth.jwksUrl);
  } catch (cause) {
    throw new UsageError(`createSyncServer(): auth.jwksUrl "${auth.jwksUrl}" is not a URL`, { cause });
  }
  const keys = createRemoteJWKSet(url);
  return jwtAuthenticator((token) => jwtVerify(token, keys, options), auth.requireExp ?? true);
}

function jwtAuthenticator(
  verify: (token: string) => Promise<{ payload: JWTPayload }>,
  requireExp: boolean,
): Authenticator {
  return async ({ token }) => {
    if (!token) throw missingToken();
    let payload: JWTPayload;
    try {
      ({ payload } = await verify(token));
    } catch (cause) {
      // The key set could not be fetched: the server's trouble, not the token's. Not an AuthError,
      // so the client is told to retry rather than to get a new token.
      const code = (cause as { code?: string }).code;
      if (cause instanceof TypeError || code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID') {
        throw new Error(`could not get the key set to check tokens: ${(cause as Error).message}`, { cause });
      }
      throw new AuthError(
        describeJoseError(cause, () => unverifiedClaims(token)),
        { cause },
      );
    }
    if (requireExp && typeof payload.exp !== 'number') {
      throw new AuthError(
        'the token has no "exp" claim: tokens must expire; get a token made with an expiry (setExpirationTime)',
      );
    }
    return userFromClaims(payload);
  };
}

function customAuthenticator(
  authenticate: (request: AuthRequest) => Promise<SyncUser | undefined> | SyncUser | undefined,
): Authenticator {
  if (typeof authenticate !== 'function') {
    throw new UsageError('createSyncServer(): auth.authenticate must be a function (request) => user');
  }
  return async (request) => {
    // An AuthError thrown refuses with its message; anything else it throws is the server failing.
    const user = await authenticate(request);
    if (user === undefined || user === null) {
      throw request.token ? new AuthError('the token was refused by the server') : missingToken();
    }
    if (typeof user !== 'object' || typeof user.userId !== 'string' || user.userId === '') {
      throw new AuthError(
        'the server could not tell who you are: authenticate() must return an object with a userId string',
      );
    }
    return user;
  };
}
