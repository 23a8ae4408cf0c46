/* Caches the app shell and an offline page. Saves are left to the page script. */
var CACHE = "pro-app-shell-v1";
// Static URLs carry ?v=<content hash>: a new file is a new URL, fetched once and kept.
var SHELL = ["/offline"];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(SHELL); }));
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === "navigate") {
    // Pages hold answers: never cached, only the offline page when the network is gone.
    event.respondWith(fetch(request).catch(function () { return caches.match("/offline"); }));
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (hit) {
      return hit || fetch(request).then(function (reply) {
        if (reply.ok && url.search.indexOf("v=") !== -1) {
          var copy = reply.clone();
          caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
        }
        return reply;
      });
    }));
  }
});
