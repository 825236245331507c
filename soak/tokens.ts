/**
 * The soak's tokens: the server trusts `SOAK_JWT_SECRET`, each client gets a JWT for a user of
 * its own (no rules: every user may read and write every row).
 */
import { SignJWT } from 'jose';

/**
 * The HS256 secret of the soak's server (a test secret, for loopback only).
 *
 * @example
 *   createSyncServer({ ..., auth: { jwtSecret: SOAK_JWT_SECRET } });
 */
export const SOAK_JWT_SECRET = 'syncline-soak-secret-of-at-least-32-bytes!';

/**
 * A JWT for `userId`, valid for a day.
 *
 * @example
 *   const token = await soakToken('client-0');
 */
export function soakToken(userId: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(new TextEncoder().encode(SOAK_JWT_SECRET));
}
