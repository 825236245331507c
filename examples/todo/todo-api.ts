import type { IncomingMessage, ServerResponse } from 'node:http';
import { SignJWT } from 'jose';
import { and, type Database, eq } from '../../src/index.js';
import { type todoSchema, todos } from './schema.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The todo server's own HTTP API, written with syncline on the server's database (PostgreSQL or
 * PGlite). Its writes go through the same capture triggers as every other write, so they reach
 * every page like an edit made on one:
 *
 * - `POST /api/clear-completed?list=ID`: deletes the completed todos of that list; answers
 *   `{ deleted }` (400 without a list id).
 * - `GET /api/token?user=NAME`: a demo token (HS256, 12 hours) for the sync connection.
 *
 * Answers 404 for other `/api/` paths; returns false for paths outside `/api/` (the page's).
 *
 * @example
 *   const http = createServer(async (req, res) => {
 *     if (!(await handleTodoApi(req, res, server.db, secret))) vite.middlewares(req, res);
 *   });
 */
export async function handleTodoApi(
  request: IncomingMessage,
  response: ServerResponse,
  db: Database<typeof todoSchema>,
  secret: string,
): Promise<boolean> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (!url.pathname.startsWith('/api/')) return false;
  try {
    if (url.pathname === '/api/clear-completed' && request.method === 'POST') {
      const list = url.searchParams.get('list') ?? '';
      if (!UUID.test(list)) {
        reply(response, 400, { error: 'list must be the id of the list to clear (a uuid), as ?list=ID' });
      } else {
        const { rowsAffected } = await db
          .delete(todos)
          .where(and(eq(todos.listId, list), eq(todos.done, true)));
        reply(response, 200, { deleted: rowsAffected });
      }
    } else if (url.pathname === '/api/token' && request.method === 'GET') {
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
