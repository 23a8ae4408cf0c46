/* The service worker: one release's app shell and offline page, and nothing else.
 *
 * /sw.js is this file with `self.RELEASE = {version, shell}` in front (pro_app/pwa.py): the
 * release's version (a hash of the shell) and the shell's URLs, static ones with ?v=<hash>.
 * A new release is a new /sw.js, so the browser installs a new worker beside the old one.
 * - install: fill this release's cache completely (all or nothing), then take over;
 * - activate: delete the caches of older releases;
 * - pages are never cached: they hold answers (Cache-Control: no-store). A page that
 *   cannot be fetched gets this release's offline page; posts (saves, submits) are never
 *   touched, so they reach the server or fail visibly, and the page script retries them.
 */
var RELEASE = self.RELEASE || { version: "dev", shell: ["/offline"] };
var PREFIX = "pro-app-shell-";
var CACHE = PREFIX + RELEASE.version;
var OFFLINE = "/offline";

function fresh(url) {
  // Past the browser's HTTP cache: the offline page must be this release's.
  return new Request(url, { cache: "reload", credentials: "same-origin" });
}

function previousLanguage() {
  // The offline page kept by the release before, if any: keep its language.
  return caches.match(OFFLINE).then(function (old) {
    if (!old) { return null; }
    return old.text().then(function (html) {
      var found = /<html[^>]*\slang="([a-z]{2,3})"/.exec(html);
      return found ? found[1] : null;
    });
  }).catch(function () { return null; });
}

self.addEventListener("install", function (event) {
  event.waitUntil(previousLanguage().then(function (lang) {
    return caches.open(CACHE).then(function (cache) {
      var assets = RELEASE.shell.filter(function (url) { return url !== OFFLINE; });
      var page = OFFLINE + (lang ? "?lang=" + encodeURIComponent(lang) : "");
      return Promise.all([
        cache.addAll(assets.map(fresh)),
        fetch(fresh(page)).then(function (reply) {
          if (!reply.ok) { throw new Error("offline page: HTTP " + reply.status); }
          return cache.put(OFFLINE, reply);
        })
      ]);
    });
  }).then(function () {
    // Everything is in place: no need to wait for the old release's pages to close.
    return self.skipWaiting();
  }, function (error) {
    // A half-filled cache is thrown away; the old worker stays, and the browser tries again.
    return caches.delete(CACHE).then(function () { throw error; });
  }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (key) {
      return key.indexOf(PREFIX) === 0 && key !== CACHE;
    }).map(function (key) { return caches.delete(key); }));
  }).then(function () { return self.clients.claim(); }));
});

function offlinePage() {
  return caches.open(CACHE).then(function (cache) { return cache.match(OFFLINE); })
    .then(function (hit) { return hit || Response.error(); });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(offlinePage));
    return;
  }
  if (url.pathname === OFFLINE) {
    // The page script fetches the offline page in the language the participant reads now.
    event.respondWith(fetch(request).then(function (reply) {
      if (reply.ok) {
        var copy = reply.clone();
        event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.put(OFFLINE, copy); }));
      }
      return reply;
    }));
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    // This release's files by their exact URL (?v=<hash>); anything else from the network.
    event.respondWith(caches.open(CACHE).then(function (cache) {
      return cache.match(request).then(function (hit) { return hit || fetch(request); });
    }));
  }
});
