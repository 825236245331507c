import type { IncomingMessage, ServerResponse } from 'node:http';
import { SignJWT } from 'jose';

/**
 * The todo server's HTTP API, the demo's stand-in for a login (its business logic is mutators,
 * mutators.ts, which need no API):
 *
 * - `GET /api/token?user=NAME`: a demo token (HS256, 12 hours) for the sync connection.
 *
 * Answers 404 for other `/api/` paths; returns false for paths outside `/api/` (the page's).
 *
 * @example
 *   const http = createServer(async (req, res) => {
 *     if (!(await handleTodoApi(req, res, secret))) vite.middlewares(req, res);
 *   });
 */
export async function handleTodoApi(
  request: IncomingMessage,
  response: ServerResponse,
  secret: string,
): Promise<boolean> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (!url.pathname.startsWith('/api/')) return false;
  try {
    if (url.pathname === '/api/token' && request.method === 'GET') {
      const user = url.searchParams.get('user') ?? '';
      if (!/^[\w-]{1,32}$/.test(user)) {
        reply(response, 400, { error: 'user must be 1 to 32 letters, digits, "_" or "-"' });
      } else {
        reply(response, 200, { token: await demoToken(user, secret) });
      }
    } else {
      reply(response, 404, { error: `no API at ${request.method} ${url.pathname}` });
    }
  } catch (error) {
    reply(response, 500, { error: (error as Error).message });
  }
  return true;
}

/**
 * Signs a token for `user` with the server's secret. This is the demo's whole "login": anyone may
 * get a token for any name. A real app has its own login and hands out tokens only to the user
 * they name (or points the sync server at its identity provider's keys with `auth: { jwksUrl }`).
 *
 * @example
 *   const token = await demoToken('alice', secret); // 'eyJhbGciOiJIUzI1NiJ9…'
 */
export function demoToken(user: string, secret: string): Promise<string> {
  return new SignJWT({ name: user })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime('12h')
    .sign(new TextEncoder().encode(secret));
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  response.end(JSON.stringify(body));
}
