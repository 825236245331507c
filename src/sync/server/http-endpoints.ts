import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerMetrics } from './server-metrics.js';
import { STATUS_PAGE_HTML } from './status-board.js';

/**
 * What a sync server shows operators besides its sync endpoint (`createSyncServer({ monitoring })`):
 * `/healthz` and `/readyz` always (for load balancers and orchestrators; they tell nothing about
 * the data), `/metrics` in Prometheus text when `metrics` is on. With `adminToken` set, `/metrics`
 * needs `Authorization: Bearer <adminToken>`. `/readyz` answers within `readyTimeoutMs` (default
 * 2 s) however busy the database is, and says not ready when the server is more than `maxLagMs`
 * (default 30 s) behind the change log.
 *
 * @example
 *   createSyncServer({ schema, database, auth, monitoring: { metrics: true, adminToken: process.env.ADMIN_TOKEN } });
 */
export interface MonitoringOptions {
  readonly metrics?: boolean;
  /**
   * Serve `/status`, a page of the live connections (user, client id, shapes, lag, the outbox each
   * client reports), the activity of the last minutes and the latest rejections. Needs
   * `adminToken`: the page asks for it.
   */
  readonly statusPage?: boolean;
  readonly adminToken?: string;
  readonly readyTimeoutMs?: number;
  readonly maxLagMs?: number;
}

/** The outcome of each readiness check: 'ok', or what is wrong. */
export type ReadyChecks = Record<string, string>;

interface Endpoints {
  readonly path: string;
  readonly metrics: ServerMetrics | undefined;
  readonly adminToken: string | undefined;
  readonly readyTimeoutMs: number;
  /**
   * Runs the readiness checks (the database may take any time: the timeout bounds the answer),
   * noting each in `progress` as 'pending' before it starts, so a timeout names the one that hung.
   */
  readonly ready: (progress: ReadyChecks) => Promise<ReadyChecks>;
  /** The status page's data, when the page is on. */
  readonly status: (() => object) | undefined;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Whether the request carries the admin token, compared in constant time (both sides hashed, so
 * neither the length nor a matching prefix shows in the time taken).
 */
function authorized(request: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const header = request.headers.authorization ?? '';
  const given = header.startsWith('Bearer ') ? header.slice(7) : '';
  return timingSafeEqual(digest(given), digest(token));
}

/** Answers 401 and returns true when the request lacks the admin token (when one is set). */
function refused(request: IncomingMessage, response: ServerResponse, token: string | undefined): boolean {
  if (authorized(request, token)) return false;
  response.setHeader('WWW-Authenticate', 'Bearer');
  reply(
    response,
    401,
    'text/plain',
    'the admin token is missing or wrong: send Authorization: Bearer <token>\n',
  );
  return true;
}

function reply(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  response.end(body);
}

/**
 * The plain HTTP side of a sync server: health, readiness and metrics; anything else is told to
 * upgrade to a WebSocket on the sync path. A readiness probe never waits longer than its timeout,
 * and probes arriving while one runs share its checks.
 *
 * @example
 *   http.createServer(httpEndpoints({ path: '/sync', metrics, adminToken, readyTimeoutMs: 2000, ready }));
 */
export function httpEndpoints(
  endpoints: Endpoints,
): (request: IncomingMessage, response: ServerResponse) => void {
  let running: Promise<ReadyChecks> | undefined;
  let progress: ReadyChecks = {};
  const readiness = (): Promise<ReadyChecks> => {
    if (!running) {
      progress = {};
      running = endpoints.ready(progress).finally(() => {
        running = undefined;
      });
    }
    const seen = progress;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<ReadyChecks>((resolve) => {
      timer = setTimeout(() => {
        const late = `no answer within ${endpoints.readyTimeoutMs} ms`;
        const checks = Object.fromEntries(
          Object.entries(seen).map(([name, outcome]) => [name, outcome === 'pending' ? late : outcome]),
        );
        resolve(Object.keys(checks).length > 0 ? checks : { database: late });
      }, endpoints.readyTimeoutMs);
    });
    return Promise.race([running, timeout]).finally(() => clearTimeout(timer));
  };

  return (request, response) => {
    const { pathname } = new URL(request.url ?? '/', 'http://localhost');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      reply(response, 405, 'text/plain', 'only GET\n');
      return;
    }
    if (pathname === '/healthz') {
      reply(response, 200, 'text/plain', 'ok\n');
      return;
    }
    if (pathname === '/readyz') {
      void readiness().then(
        (checks) => {
          const ready = Object.values(checks).every((outcome) => outcome === 'ok');
          reply(response, ready ? 200 : 503, 'application/json', `${JSON.stringify({ ready, checks })}\n`);
        },
        (error: Error) =>
          reply(
            response,
            503,
            'application/json',
            `${JSON.stringify({ ready: false, error: error.message })}\n`,
          ),
      );
      return;
    }
    if (pathname === '/metrics') {
      const { metrics } = endpoints;
      if (!metrics) {
        reply(
          response,
          404,
          'text/plain',
          'metrics are off: createSyncServer({ monitoring: { metrics: true } })\n',
        );
        return;
      }
      if (refused(request, response, endpoints.adminToken)) return;
      void metrics.registry.metrics().then(
        (text) => reply(response, 200, metrics.registry.contentType, text),
        (error: Error) => reply(response, 500, 'text/plain', `metrics failed: ${error.message}\n`),
      );
      return;
    }
    if (pathname === '/status' || pathname === '/status.json') {
      if (!endpoints.status) {
        reply(
          response,
          404,
          'text/plain',
          'the status page is off: createSyncServer({ monitoring: { statusPage: true, adminToken } })\n',
        );
        return;
      }
      // The page itself holds no data; what it shows comes from status.json, with the token.
      if (pathname === '/status') {
        reply(response, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
        return;
      }
      if (refused(request, response, endpoints.adminToken)) return;
      reply(response, 200, 'application/json', JSON.stringify(endpoints.status()));
      return;
    }
    response.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' });
    response.end(`this is a syncline sync server: connect with a WebSocket to ${endpoints.path}\n`);
  };
}
