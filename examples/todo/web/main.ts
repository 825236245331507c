import { sqliteWasm } from '../../../src/drivers/sqlite-wasm/index.js';
import { asc, count, eq, openDatabase } from '../../../src/index.js';
import { SyncConnectionError, syncClient } from '../../../src/sync/client/index.js';
import { type List, lists, type Todo, todoSchema, todos } from '../schema.js';
import { h, inlineEditor } from './dom.js';

// The todo page: SQLite WASM in a worker (kept in OPFS), synced with the server, rendered from
// live queries. Every edit is a local write: it shows at once, works offline, and the sync
// client pushes it when the server is reachable. Open it as ?user=alice (any name will do: the
// demo's "login" is GET /api/token).

const params = new URLSearchParams(location.search);
const user = /^[\w-]{1,32}$/.test(params.get('user') ?? '') ? params.get('user')! : 'guest';
// `?sync=ws://…` points the page at another sync endpoint (the end-to-end tests put a proxy there).
const syncUrl =
  params.get('sync') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync`;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const listsView = $<HTMLUListElement>('lists');
const todosView = $<HTMLUListElement>('todos');
const listTitle = $<HTMLHeadingElement>('list-title');
const newList = $<HTMLInputElement>('new-list');
const newTodo = $<HTMLInputElement>('new-todo');
const clearCompleted = $<HTMLButtonElement>('clear-completed');
const statusBadge = $<HTMLSpanElement>('sync-status');
const message = $<HTMLParagraphElement>('message');
$('user').textContent = user;

// Commits are not flushed to disk (they survive a crash of the tab or the browser, not of the
// system), so an edit goes out without waiting for OPFS: 2 to 20 ms per commit in Chromium.
const driver = sqliteWasm({ name: `todo-${user}.db`, synchronous: 'normal' });
const db = await openDatabase(todoSchema, driver);
$('storage').textContent = driver.storage === 'opfs' ? 'OPFS' : 'memory';

function say(text: string): void {
  message.textContent = text;
}

const selectedKey = `todo-selected-list:${user}`;
let selectedId: string | undefined = localStorage.getItem(selectedKey) ?? undefined;
let currentLists: List[] | undefined; // undefined until the first result
let openCounts = new Map<string, number>();
let currentTodos: Todo[] = [];
let editing: string | undefined; // the id of the list or todo being renamed
let stopTodos: (() => void) | undefined;

function select(id: string | undefined): void {
  if (id === selectedId && stopTodos) return;
  selectedId = id;
  if (id) localStorage.setItem(selectedKey, id);
  stopTodos?.();
  stopTodos = undefined;
  currentTodos = [];
  if (id) {
    stopTodos = db
      .select()
      .from(todos)
      .where(eq(todos.listId, id))
      .orderBy(asc(todos.createdAt), asc(todos.id))
      .watch()
      .subscribe((rows) => {
        currentTodos = rows;
        renderTodos();
      }, reportError);
  }
  render();
}

function reportError(error: unknown): void {
  say(`Error: ${(error as Error).message}`);
}

function run(work: PromiseLike<unknown>): void {
  Promise.resolve(work).catch(reportError);
}

function render(): void {
  renderLists();
  renderTodos();
}

/**
 * True while a rename field is open in `view`. Rendering replaces the view's children, which
 * would pull the field away from under the user's fingers (and save half a name, on blur) each
 * time a live query re-emits: a sync change arriving, the open count moving. So a view being
 * edited is left as it is, and rendered again when the edit ends.
 */
function editingIn(view: HTMLElement): boolean {
  return editing !== undefined && view.querySelector('.inline-edit') !== null;
}

function renderLists(): void {
  if (!currentLists || editingIn(listsView)) return;
  listsView.replaceChildren(
    ...currentLists.map((list) => {
      const name =
        editing === list.id
          ? inlineEditor(list.name, (text) => {
              editing = undefined;
              if (text) run(db.update(lists).set({ name: text }).where(eq(lists.id, list.id)));
              render();
            })
          : h('span', { className: 'list-name', textContent: list.name, title: 'double-click to rename' });
      name.addEventListener('dblclick', () => {
        editing = list.id;
        renderLists();
      });
      const open = openCounts.get(list.id) ?? 0;
      return h(
        'li',
        { className: list.id === selectedId ? 'selected' : '', dataset: { listId: list.id } },
        name,
        h('span', { className: 'open-count', textContent: open > 0 ? String(open) : '' }),
        h('button', {
          className: 'icon list-delete',
          textContent: '×',
          title: 'delete this list and its todos',
          onclick: (event) => {
            event.stopPropagation();
            run(db.delete(lists).where(eq(lists.id, list.id)));
          },
        }),
      );
    }),
  );
  for (const item of Array.from(listsView.children)) {
    item.addEventListener('click', () => select((item as HTMLElement).dataset.listId));
  }
  const selected = currentLists.find((l) => l.id === selectedId);
  listTitle.textContent = selected?.name ?? (currentLists.length ? 'Pick a list' : 'No list yet: add one');
  newTodo.disabled = !selected;
  clearCompleted.disabled = !selected;
}

function renderTodos(): void {
  if (editingIn(todosView)) return;
  todosView.replaceChildren(
    ...currentTodos.map((todo) => {
      const title =
        editing === todo.id
          ? inlineEditor(todo.title, (text) => {
              editing = undefined;
              if (text) run(db.update(todos).set({ title: text }).where(eq(todos.id, todo.id)));
              renderTodos();
            })
          : h('span', { className: 'todo-title', textContent: todo.title, title: 'double-click to rename' });
      title.addEventListener('dblclick', () => {
        editing = todo.id;
        renderTodos();
      });
      return h(
        'li',
        { className: todo.done ? 'done' : '', dataset: { todoId: todo.id } },
        h('input', {
          type: 'checkbox',
          className: 'todo-done',
          checked: todo.done,
          onchange: () => run(db.update(todos).set({ done: !todo.done }).where(eq(todos.id, todo.id))),
        }),
        title,
        h('button', {
          className: 'icon todo-delete',
          textContent: '×',
          title: 'delete',
          onclick: () => run(db.delete(todos).where(eq(todos.id, todo.id))),
        }),
      );
    }),
  );
}

db.select()
  .from(lists)
  .orderBy(asc(lists.createdAt), asc(lists.id))
  .watch()
  .subscribe((rows) => {
    currentLists = rows;
    if (!rows.some((l) => l.id === selectedId)) select(rows[0]?.id);
    else if (!stopTodos) select(selectedId);
    else renderLists();
  }, reportError);

db.select({ listId: todos.listId, open: count() })
  .from(todos)
  .where(eq(todos.done, false))
  .groupBy(todos.listId)
  .watch()
  .subscribe((rows) => {
    openCounts = new Map(rows.map((r) => [r.listId, Number(r.open)]));
    renderLists();
  }, reportError);

$('new-list-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = newList.value.trim();
  if (!name) return;
  newList.value = '';
  run(
    db
      .insert(lists)
      .values({ name, createdBy: user })
      .returning()
      .then(([list]) => select(list.id)),
  );
});

$('new-todo-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const title = newTodo.value.trim();
  if (!title || !selectedId) return;
  newTodo.value = '';
  run(db.insert(todos).values({ listId: selectedId, title }));
});

// The list picked last time shows its todos at once, before the lists' query has answered.
if (selectedId) select(selectedId);

// Sync starts after the live queries above, so the page shows what its own database holds at
// once, without waiting for the server.
const sync = syncClient(db, {
  url: syncUrl,
  // Asked on every connection attempt; while the server is unreachable this fails and the
  // client tries again later.
  token: async () => {
    let response: Response;
    try {
      response = await fetch(`/api/token?user=${encodeURIComponent(user)}`);
    } catch (error) {
      unreachable();
      throw error;
    }
    if (!response.ok) throw new Error(`GET /api/token answered ${response.status}`);
    return ((await response.json()) as { token: string }).token;
  },
  // A connection that went silent (the browser offline without closing it) is dropped after
  // two intervals, not six: 10 to 15 s rather than 30 to 45.
  pingIntervalMs: 5_000,
});

// The badge: "offline" when the browser says so (its offline event), when the last attempt to
// reach the server failed (a connection, or a request of this page's own) or sync stopped for
// good; "online" once welcomed; "connecting" from the start until the first attempt's answer.
let browserOffline = !navigator.onLine;
let failedToReach = false;
let running = false; // the page has started the sync client and not stopped it
function showStatus(): void {
  const reachable = !browserOffline && !failedToReach;
  const status =
    reachable && sync.status === 'online' ? 'online' : reachable && running ? 'connecting' : 'offline';
  statusBadge.textContent = status;
  statusBadge.dataset.status = status;
}
sync.on('status', (status) => {
  if (status === 'online') failedToReach = false;
  showStatus();
});
sync.on('error', (error) => {
  if (!(error instanceof SyncConnectionError)) return;
  // The client is already reconnecting: no restart needed, only the badge.
  failedToReach = true;
  showStatus();
});
sync.on('rejected', ({ reason }) => say(`The server refused a change (rolled back here): ${reason}`));

// Starts and stops go one after the other: a start() made while a stop() is still closing the
// connection would be lost.
let syncSteps: Promise<unknown> = Promise.resolve();
function runSync(on: boolean): void {
  running = on;
  showStatus();
  syncSteps = syncSteps.then(() => {
    if (!on) return sync.stop();
    void sync.start().catch((error: Error) => {
      running = false;
      showStatus();
      say(`Sync stopped: ${error.message}`);
    });
  });
}

/**
 * A request of this page's own could not reach the server. A connection the client still
 * thinks is open (a half-open socket, the browser offline) is dropped and made again, so the
 * badge tells the truth now rather than after the keep-alive's timeout.
 */
function unreachable(): void {
  failedToReach = true;
  showStatus();
  if (sync.status === 'online' && !browserOffline) {
    runSync(false);
    runSync(true);
  }
}

window.addEventListener('offline', () => {
  browserOffline = true;
  runSync(false);
});
window.addEventListener('online', () => {
  browserOffline = false;
  failedToReach = false;
  runSync(true);
});
if (browserOffline) showStatus();
else runSync(true);

// A write made by the server's own code, not by this page: the deletes come back through sync.
clearCompleted.addEventListener('click', async () => {
  const list = currentLists?.find((l) => l.id === selectedId);
  if (!list) return;
  clearCompleted.disabled = true;
  try {
    let response: Response;
    try {
      response = await fetch(`/api/clear-completed?list=${encodeURIComponent(list.id)}`, { method: 'POST' });
    } catch (error) {
      unreachable();
      throw error;
    }
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    const { deleted } = (await response.json()) as { deleted: number };
    say(`The server cleared ${deleted} completed todo${deleted === 1 ? '' : 's'} of ${list.name}.`);
  } catch (error) {
    say(`Clear completed runs on the server, which is out of reach (${(error as Error).message}).`);
  } finally {
    clearCompleted.disabled = !selectedId;
  }
});

/**
 * Registers the service worker that keeps the app shell, so a reload works offline
 * (web/public/sw.js). A page it does not control yet (the first visit) asks it to fetch the
 * whole shell now; later visits keep what they load. `data-offline-ready` says when it is done.
 */
async function keepAppShell(): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  const controlled = navigator.serviceWorker.controller !== null;
  await navigator.serviceWorker.register('/sw.js');
  if (!controlled) {
    const worker = (await navigator.serviceWorker.ready).active!;
    const channel = new MessageChannel();
    const reply = new Promise<{ ok: boolean; error?: string }>((resolve) => {
      channel.port1.onmessage = (event) => resolve(event.data);
    });
    worker.postMessage({ type: 'precache', url: location.href }, [channel.port2]);
    const { ok, error } = await reply;
    if (!ok) throw new Error(error);
  }
  document.body.dataset.offlineReady = 'true';
}
keepAppShell().catch((error: Error) =>
  console.warn(`the app shell is not kept for offline use: ${error.message}`),
);

// For the browser console and the end-to-end tests.
Object.assign(window, { todoApp: { db, sync, driver } });
document.body.dataset.ready = 'true';
