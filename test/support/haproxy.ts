import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haproxyPath } from './requirements.js';

/**
 * HAProxy (Debian's package) in front of sync servers on loopback, as a process the caller owns:
 * a config file of its own in a temp folder, `mode http` (HAProxy passes a WebSocket upgrade
 * through and then tunnels the connection), health checks on each server's `/readyz` every 200 ms
 * that take a server out after two failures, and a stats page to ask how many connections each
 * server holds.
 */

/**
 * One backend server as the balancer sees it, from its stats page.
 *
 * @example
 *   const [s1] = await balancer.servers(); if (s1.status === 'UP') ...
 */
export interface BalancedServer {
  readonly name: string;
  /** 'UP', 'DOWN', or a transition such as 'UP 1/2'. */
  readonly status: string;
  /** Connections open through the balancer to this server now. */
  readonly connections: number;
}

/**
 * A running HAProxy: clients connect to `port`; `servers()` reads its stats.
 *
 * @example
 *   const balancer = await startHaproxy([{ name: 's1', port: 4001 }, { name: 's2', port: 4002 }]);
 *   const url = `ws://127.0.0.1:${balancer.port}/sync`;
 *   await balancer.close();
 */
export interface Balancer {
  readonly port: number;
  /** The config it runs with, for a failure report or the docs. */
  readonly config: string;
  servers(): Promise<BalancedServer[]>;
  /** Stops HAProxy (SIGTERM, then SIGKILL after 2 s) and removes its folder. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * A port free on 127.0.0.1 right now (the OS picks it): for a process that must listen on a port
 * known in advance, as a balancer's backends are.
 *
 * @example
 *   const port = await freePort();
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The HAProxy config for sync servers on `backends`: WebSocket-friendly timeouts (`timeout tunnel`
 * governs a connection once upgraded), a failed connect retried on another server, readiness
 * checks (`GET /readyz`).
 *
 * @example
 *   writeFileSync('haproxy.cfg', haproxyConfig(8080, 8081, [{ name: 's1', port: 4001 }]));
 */
export function haproxyConfig(
  port: number,
  statsPort: number,
  backends: readonly { name: string; port: number }[],
): string {
  return `global
  maxconn 2000

defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  # A WebSocket is a tunnel once upgraded: this is its idle timeout (clients ping well within it).
  timeout tunnel 1h
  timeout client-fin 1s
  timeout server-fin 1s
  # A connect that fails (a server just killed) is tried again on another server.
  retries 3
  option redispatch 1

frontend sync
  bind 127.0.0.1:${port}
  default_backend sync_servers

backend sync_servers
  balance roundrobin
  # The server's readiness: its database answers, capture is installed, it is not behind the log.
  option httpchk
  http-check send meth GET uri /readyz
  http-check expect status 200
  # Out after two failed checks, back after one; checked often, to keep the test short.
  default-server inter 200ms fall 2 rise 1
${backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port} check`).join('\n')}

listen stats
  bind 127.0.0.1:${statsPort}
  stats enable
  stats uri /stats
`;
}

/**
 * Starts HAProxy on a free loopback port in front of `backends` (which may not be up yet: they
 * are taken in as their health checks pass) and resolves once it accepts connections.
 *
 * @example
 *   const balancer = await startHaproxy([{ name: 's1', port: await freePort() }]);
 */
export async function startHaproxy(backends: readonly { name: string; port: number }[]): Promise<Balancer> {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-haproxy-'));
  const port = await freePort();
  const statsPort = await freePort();
  const config = haproxyConfig(port, statsPort, backends);
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  // -db: stay in the foreground, a child of ours; -W is not needed without reloads.
  const child: ChildProcess = spawn(haproxyPath(), ['-db', '-f', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return closed;
  };
  const servers = async (): Promise<BalancedServer[]> => {
    const response = await fetch(`http://127.0.0.1:${statsPort}/stats;csv`);
    const [header, ...lines] = (await response.text()).trim().split('\n');
    const columns = header!.replace(/^# /, '').split(',');
    const at = (name: string) => columns.indexOf(name);
    return lines
      .map((line) => line.split(','))
      .filter((cells) => cells[at('pxname')] === 'sync_servers' && cells[at('svname')] !== 'BACKEND')
      .map((cells) => ({
        name: cells[at('svname')]!,
        status: cells[at('status')]!,
        connections: Number(cells[at('scur')]),
      }));
  };
  // Up once the stats page answers (the frontend is bound by then too).
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`haproxy exited with ${child.exitCode}: ${output}`);
    }
    try {
      await servers();
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await close();
        throw new Error(`haproxy did not answer within 10 s: ${output}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { port, config, servers, close };
}
