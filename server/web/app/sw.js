// The field app's service worker: once the app has been opened, its files come from a cache,
// so it opens with no network at all (SPEC.md, "GET /app/"). A file is served from the cache
// at once and fetched again behind it (stale while revalidate): on a slow link the app never
// waits for the network to start, and a new version is taken on the next start. Requests
// outside /app/ (the API, the photos of /v1/blobs/) are left to the network; files.js keeps
// the photos it shows.
'use strict';

const CACHE = 'fieldsync-app-3';
const FILES = ['./', 'index.html', 'app.js', 'files.js', 'work.js', 'style.css', 'manifest.webmanifest', 'replica-client.js',
  'replica-worker.js', 'fieldsync-replica.js', 'fieldsync-replica.wasm'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith('/app/')) return;
  event.respondWith(caches.open(CACHE).then(async (cache) => {
    const cached = await cache.match(event.request, { ignoreSearch: true });
    const fresh = fetch(event.request).then((res) => {
      if (res.ok) cache.put(event.request, res.clone());
      return res;
    });
    if (cached) {
      event.waitUntil(fresh.catch(() => undefined));
      return cached;
    }
    return fresh;
  }));
});
