/* Keeps a page's answers through a dropped connection and resends them with the same
   save id. No framework; everything also works without this script. */
(function () {
  "use strict";
  var DB_NAME = "pro-app", STORE = "pending", RETRY_MS = 5000, SHELL_CACHE = "pro-app-shell-v1";

  function openStore() {
    return new Promise(function (resolve, reject) {
      if (!window.indexedDB) { reject(new Error("no IndexedDB")); return; }
      var request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function withStore(mode, action) {
    return openStore().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result = action(tx.objectStore(STORE));
        tx.oncomplete = function () { resolve(result && result.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    }).catch(function () { return undefined; });
  }

  function keep(key, entry) { return withStore("readwrite", function (s) { return s.put(entry, key); }); }
  function forget(key) { return withStore("readwrite", function (s) { return s.delete(key); }); }
  function recall(key) { return withStore("readonly", function (s) { return s.get(key); }); }

  function notice(form, text) {
    var box = document.querySelector("[data-offline-notice]");
    if (!box) {
      box = document.createElement("div");
      box.className = "offline-notice";
      box.setAttribute("role", "status");
      box.setAttribute("data-offline-notice", "");
      form.parentNode.insertBefore(box, form);
    }
    box.textContent = text;
    box.hidden = !text;
  }

  function fieldsOf(form, submitter) {
    var data = new FormData(form);
    if (submitter && submitter.name) { data.append(submitter.name, submitter.value); }
    var stamp = form.querySelector("input[name=client_time]");
    if (stamp) { data.set("client_time", new Date().toISOString()); }
    var pairs = [];
    data.forEach(function (value, name) { pairs.push([name, String(value)]); });
    return pairs;
  }

  function body(pairs, form) {
    var data = new URLSearchParams();
    var token = form.querySelector("input[name=csrf_token]");
    pairs.forEach(function (pair) {
      // A resend after the link was opened again must carry this page's fresh token.
      data.append(pair[0], pair[0] === "csrf_token" && token ? token.value : pair[1]);
    });
    return data;
  }

  function show(response) {
    // The next page came with the answer to the save: show it without fetching it again.
    var url = response.url;
    return response.text().then(function (html) {
      var page = new DOMParser().parseFromString(html, "text/html");
      if (response.redirected && url !== window.location.href) {
        window.history.pushState({ pro: true }, "", url);
      }
      document.documentElement.lang = page.documentElement.lang;
      document.title = page.title;
      document.body.replaceWith(page.body);
      window.scrollTo(0, 0);
      init();
      // Move focus as a page load would: to the error summary, else the heading.
      var target = document.querySelector(".error-summary") || document.querySelector("h1");
      if (target) {
        if (!target.hasAttribute("tabindex")) { target.setAttribute("tabindex", "-1"); }
        target.focus();
      }
    });
  }

  function send(form, key) {
    var offlineText = form.getAttribute("data-offline-text");
    var lostText = form.getAttribute("data-lost-text");
    var pairs = form._pending;  // the latest answers: a tap while waiting replaces them
    // Not form.action: a control named "action" (our buttons) shadows that property.
    return fetch(form.getAttribute("action") || window.location.href, {
      method: "POST", body: body(pairs, form), credentials: "same-origin", redirect: "follow",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (response) {
      if (response.status === 400 || response.status === 401) {
        notice(form, lostText);  // session gone: keep the answers until the link is opened again
        form.removeAttribute("data-busy");
        return;
      }
      if (pairs !== form._pending) { return send(form, key); }  // changed while in flight
      return forget(key).then(function () { return show(response); });
    }, function () {
      notice(form, offlineText);
      setTimeout(function () { send(form, key); }, RETRY_MS);
    });
  }

  function freshId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function attach(form) {
    var key = window.location.pathname;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var pairs = fieldsOf(form, event.submitter);
      if (form.hasAttribute("data-busy")) {
        // A save is waiting for the network: the answers on screen now replace it, under a
        // new save id (the server may already hold the first one).
        if (form.querySelector("input[name=save_id]")) {
          var id = freshId();
          pairs = pairs.map(function (p) { return p[0] === "save_id" ? [p[0], id] : p; });
        }
        form._pending = pairs;
        keep(key, { pairs: pairs, at: Date.now() });
        return;  // the retry loop sends them; a double tap sends once
      }
      form.setAttribute("data-busy", "");
      form._pending = pairs;
      keep(key, { pairs: pairs, at: Date.now() }).then(function () { send(form, key); });
    });
    recall(key).then(function (entry) {
      if (entry && entry.pairs) {
        form.setAttribute("data-busy", "");
        form._pending = entry.pairs;
        notice(form, form.getAttribute("data-resend-text"));
        send(form, key);
      }
    });
  }

  function keepOfflinePage() {
    // The offline page in the language the participant reads now (the worker shows it).
    if (!window.caches || !navigator.serviceWorker || !navigator.serviceWorker.controller) { return; }
    var lang = document.documentElement.lang;
    try { if (localStorage.getItem("offline-lang") === lang) { return; } } catch (e) { /* private mode */ }
    fetch("/offline?lang=" + encodeURIComponent(lang), { credentials: "same-origin" })
      .then(function (reply) {
        if (!reply.ok) { return; }
        return caches.open(SHELL_CACHE).then(function (c) { return c.put("/offline", reply); })
          .then(function () { try { localStorage.setItem("offline-lang", lang); } catch (e) { /* ignore */ } });
      }).catch(function () {});
  }

  function followJob() {
    // A running export's page: fetch it again every 2 s and swap in the new progress.
    var box = document.getElementById("job-status");
    if (!box || !box.hasAttribute("data-follow") || !window.DOMParser) { return; }
    window.setTimeout(function () {
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (reply) { return reply.ok ? reply.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("job-status");
          if (!fresh) { return; }
          box.innerHTML = fresh.innerHTML;
          if (fresh.hasAttribute("data-follow")) { followJob(); } else { box.removeAttribute("data-follow"); }
        })
        .catch(function () { followJob(); });
    }, 2000);
  }

  function init() {
    followJob();
    var forms = document.querySelectorAll("form[data-save-form]");
    for (var i = 0; i < forms.length; i++) { attach(forms[i]); }
  }

  // Pages shown from a save's answer are history entries: going back reloads them.
  window.addEventListener("popstate", function () { window.location.reload(); });

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});
  }
  init();
  keepOfflinePage();
})();
