/** One connection as the status page shows it: who, which shapes, how far behind, what waits. */
export interface ConnectionStatus {
  readonly connectionId: string;
  readonly state: string;
  readonly userId: string | undefined;
  readonly clientId: string | undefined;
  readonly shapes: readonly { readonly id: string; readonly table: string }[];
  /** Changes the server has read that this connection has not been sent yet. */
  readonly lag: number;
  /** Local transactions the client said it has not had acknowledged (its last keep-alive). */
  readonly pending: number | undefined;
  readonly since: string;
}

/** A second of the server's activity, for the page's chart. */
interface Second {
  readonly t: number;
  pushes: number;
  mutations: number;
  changesSent: number;
  lagSeconds: number;
}

/** A rejected batch, as the page lists it. */
interface Rejection {
  readonly time: string;
  readonly connectionId: string;
  readonly userId: string | undefined;
  readonly clientId: string | undefined;
  readonly mutationId: number;
  readonly reason: string;
}

const SECONDS_KEPT = 300;
const REJECTIONS_KEPT = 50;

/**
 * Hides the values a reason quotes (a database error's `Key (id)=(42) already exists`, a rule's
 * `row {"id":"…"}`): the page names what went wrong, never a user's data or keys.
 */
export function withoutValues(reason: string): string {
  return reason
    .replace(/(Failing row contains )\(.*\)/g, '$1(…)')
    .replace(/=\([^)]*\)/g, '=(…)')
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\{[^{}]*\}/g, '{…}')
    .replace(/'[^']*'/g, "'…'")
    .slice(0, 300);
}

/**
 * What the status page shows beyond the connections: the last five minutes of activity, second by
 * second (pushes, mutations, changes sent, change-log lag), and the latest rejections with their
 * reasons (values quoted by the database left out). Kept in memory, bounded.
 *
 * @example
 *   board.pushed(results, fields);
 *   const json = board.report(connections.map((c) => c.status()));
 */
export class StatusBoard {
  private readonly seconds: Second[] = [];
  private readonly rejections: Rejection[] = [];

  constructor(private readonly lagSeconds: () => number) {}

  private now(): Second {
    const t = Math.floor(Date.now() / 1000);
    let last = this.seconds[this.seconds.length - 1];
    if (!last || last.t !== t) {
      last = { t, pushes: 0, mutations: 0, changesSent: 0, lagSeconds: this.lagSeconds() };
      this.seconds.push(last);
      if (this.seconds.length > SECONDS_KEPT) this.seconds.shift();
    }
    return last;
  }

  pushed(
    results: readonly { mutationId: number; status: string; reason?: string }[],
    who: { connectionId: string; userId: string | undefined; clientId: string | undefined },
  ): void {
    const second = this.now();
    second.pushes++;
    second.mutations += results.length;
    for (const result of results) {
      if (result.status !== 'rejected') continue;
      this.rejections.push({
        time: new Date().toISOString(),
        ...who,
        mutationId: result.mutationId,
        reason: withoutValues(result.reason ?? ''),
      });
      if (this.rejections.length > REJECTIONS_KEPT) this.rejections.shift();
    }
  }

  sent(changes: number): void {
    this.now().changesSent += changes;
  }

  /** The page's data: the connections given, the activity kept, the rejections newest first. */
  report(connections: readonly ConnectionStatus[]): object {
    this.now().lagSeconds = this.lagSeconds();
    return {
      time: new Date().toISOString(),
      connections,
      seconds: this.seconds,
      rejections: [...this.rejections].reverse(),
    };
  }
}

/**
 * The status page: static HTML with its script inline (no data in it). It asks for the admin
 * token once (kept in the tab's sessionStorage) and reads `status.json` with it every 2 seconds.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>syncline server status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:24px 0 8px}
.muted{color:#656d76}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #d0d7de;font-variant-numeric:tabular-nums}
th{font-weight:600;background:#f6f8fa}code{font-size:12px}
#login{margin:16px 0}#error{color:#cf222e}svg{border:1px solid #d0d7de;background:#fbfbfc}
.legend span{margin-right:16px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px}
</style></head><body>
<h1>syncline server status</h1><div class="muted" id="updated">not loaded</div>
<form id="login" hidden><label>Admin token <input id="token" type="password" autocomplete="off"></label>
<button>Show</button></form><div id="error"></div>
<h2>Activity, last five minutes</h2>
<div class="legend"><span><i class="sw" style="background:#0969da"></i>changes sent/s</span>
<span><i class="sw" style="background:#1a7f37"></i>mutations/s</span>
<span><i class="sw" style="background:#cf222e"></i>change-log lag (s)</span></div>
<svg id="chart" width="900" height="160" viewBox="0 0 900 160"></svg>
<h2>Connections (<span id="count">0</span>)</h2>
<table><thead><tr><th>connection</th><th>state</th><th>user</th><th>client</th><th>shapes</th>
<th>lag (changes)</th><th>outbox</th><th>since</th></tr></thead><tbody id="connections"></tbody></table>
<h2>Recent rejections</h2>
<table><thead><tr><th>time</th><th>user</th><th>client</th><th>batch</th><th>reason</th></tr></thead>
<tbody id="rejections"></tbody></table>
<script>
const $ = (id) => document.getElementById(id);
const cell = (text) => { const td = document.createElement('td'); td.textContent = text == null ? '' : String(text); return td; };
const row = (values) => { const tr = document.createElement('tr'); for (const v of values) tr.append(cell(v)); return tr; };
// Seconds with no activity are not kept: each kept second is placed by its age (now at the right).
function line(seconds, now, value, max, color) {
  if (seconds.length === 0) return '';
  const points = [];
  for (const s of seconds) points.push([900 - (now - s.t) * 3, 155 - (value(s) / max) * 145]);
  if (points.length === 1) points.unshift([points[0][0] - 3, points[0][1]]);
  const d = points.map(([x, y], i) => (i ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1)).join(' ');
  return '<path d="' + d + '" fill="none" stroke="' + color + '" stroke-width="1.5"/>';
}
function draw(seconds, now) {
  const max = Math.max(1, ...seconds.map((s) => Math.max(s.changesSent, s.mutations)));
  const lagMax = Math.max(1, ...seconds.map((s) => s.lagSeconds));
  $('chart').innerHTML = line(seconds, now, (s) => s.changesSent, max, '#0969da') +
    line(seconds, now, (s) => s.mutations, max, '#1a7f37') + line(seconds, now, (s) => s.lagSeconds, lagMax, '#cf222e');
}
async function load() {
  const token = sessionStorage.getItem('syncline-admin-token') || '';
  const response = await fetch('status.json', { headers: token ? { Authorization: 'Bearer ' + token } : {} });
  if (response.status === 401) { $('login').hidden = false; $('error').textContent = token ? 'That token was refused.' : ''; return; }
  if (!response.ok) { $('error').textContent = 'status.json: HTTP ' + response.status; return; }
  $('login').hidden = true; $('error').textContent = '';
  const data = await response.json();
  $('updated').textContent = 'updated ' + new Date(data.time).toLocaleTimeString();
  $('count').textContent = data.connections.length;
  $('connections').replaceChildren(...data.connections.map((c) => row([c.connectionId, c.state, c.userId, c.clientId,
    c.shapes.map((s) => s.id === s.table ? s.table : s.id + ' (' + s.table + ')').join(', '), c.lag,
    c.pending == null ? '' : c.pending + ' waiting', new Date(c.since).toLocaleTimeString()])));
  $('rejections').replaceChildren(...data.rejections.map((r) => row([new Date(r.time).toLocaleTimeString(), r.userId, r.clientId, r.mutationId, r.reason])));
  draw(data.seconds, Math.floor(Date.parse(data.time) / 1000));
}
$('login').addEventListener('submit', (event) => { event.preventDefault(); sessionStorage.setItem('syncline-admin-token', $('token').value); load(); });
load(); setInterval(load, 2000);
</script></body></html>
`;
