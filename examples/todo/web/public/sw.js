// The todo page's service worker: it keeps the app shell (the page, its modules, the SQLite
// worker and its .wasm) in a cache, so a reload works offline; the data is in the page's own
// database (OPFS), and the sync client catches up once the server is back.
//
// Every same-origin GET outside /api/ goes to the network first (the demo is served by Vite
// from source, so an online reload always gets the current code) and is kept; when the network
// fails, the kept copy answers. The page that installed it was loaded before it took control,
// so that page asks it to fetch the whole shell once (`precache`): the page's URL, and every
// module it imports, followed from file to file (including the worker's imports, which the
// page never fetches itself).

const CACHE = 'syncline-todo-shell-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

function kept(url) {
  return url.origin === self.location.origin && !url.pathname.startsWith('/api/') && url.pathname !== '/sync';
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || !kept(new URL(request.url))) return;
  event.respondWith(networkFirst(request));
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    // A page opened with other parameters (?user=bob) is the same page.
    const copy =
      (await cache.match(request)) ??
      (request.mode === 'navigate' ? await cache.match(request, { ignoreSearch: true }) : undefined);
    if (copy) return copy;
    throw error;
  }
}

// What a file refers to: src/href in HTML; imports and new URL(..., import.meta.url) in modules.
const REFERENCES = [
  /\b(?:src|href)="([^"]+)"/g,
  /\b(?:import|from)\s*\(?\s*["']([^"']+)["']/g,
  /\bnew URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url/g,
];
const MAX_FILES = 1000;

async function precache(start) {
  const cache = await caches.open(CACHE);
  const seen = new Set([start]);
  const queue = [start];
  while (queue.length > 0 && seen.size <= MAX_FILES) {
    const url = queue.shift();
    const response = await fetch(url, { cache: 'no-store' });
    if (!response.ok) continue;
    await cache.put(url, response.clone());
    const type = response.headers.get('content-type') ?? '';
    if (!/javascript|html/.test(type)) continue;
    const text = await response.text();
    for (const pattern of REFERENCES) {
      for (const match of text.matchAll(pattern)) {
        // Paths and relative specifiers only: a bare name ('zod') is no file of this origin.
        if (!/^[./]/.test(match[1])) continue;
        // Vite writes every relative import it serves with its extension: one without is text
        // in a string (React's messages quote `import('./MyComponent')`), not a file to keep.
        if (/^\.\.?\/(?:[^/?#]+\/)*[^./?#]+$/.test(match[1])) continue;
        let next;
        try {
          next = new URL(match[1], url);
        } catch {
          continue;
        }
        next.hash = '';
        if (!kept(next) || seen.has(next.href)) continue;
        seen.add(next.href);
        queue.push(next.href);
      }
    }
  }
}

self.addEventListener('message', (event) => {
  if (event.data?.type !== 'precache') return;
  const port = event.ports[0];
  event.waitUntil(
    precache(event.data.url).then(
      () => port?.postMessage({ ok: true }),
      (error) => port?.postMessage({ ok: false, error: String(error) }),
    ),
  );
});
