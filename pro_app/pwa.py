"""The installable app: web manifest and service worker (served from the site root)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import gettext as _

bp = Blueprint("pwa", __name__)

# What the worker keeps for offline use: the files every page links through asset() in
# base.html (a test checks that the two lists agree), and the offline page itself.
SHELL_FILES = ("app.css", "app.js", "icon.svg")
OFFLINE_PAGE = "/offline"
# The offline page is built from these templates and the compiled translations: a change
# to any of them is a new release of the shell as much as a changed stylesheet is.
SHELL_TEMPLATES = ("base.html", "participant/offline.html")


@bp.get("/manifest.webmanifest")
def manifest():
    """The web app manifest, in the visitor's language."""
    response = jsonify(
        {
            "name": _("Questionnaires for the study"),
            "short_name": _("Questionnaires"),
            "start_url": "/",
            "scope": "/",
            "display": "standalone",
            "background_color": "#ffffff",
            "theme_color": "#0b4fa3",
            # Hashed URLs like every other static file's, so they may be cached for a year.
            "icons": [
                {"src": asset_url("icon.svg"), "sizes": "any", "type": "image/svg+xml"},
                {"src": asset_url("icon-192.png"), "sizes": "192x192", "type": "image/png"},
                {
                    "src": asset_url("icon-512.png"),
                    "sizes": "512x512",
                    "type": "image/png",
                    "purpose": "any maskable",
                },
            ],
        }
    )
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/sw.js")
def service_worker():
    """The service worker, from the root so that its scope is the whole site.

    The script is static/sw.js with this release in front of it: a version (a hash of the
    worker, the shell files and what the offline page is made of) and the shell's URLs as
    pages link them. A new release changes the script's bytes, so the browser, which checks
    /sw.js on each navigation (no-cache), installs the new worker; its cache is named after
    the version, and the old release's cache is deleted when it takes over.
    """
    shell = [asset_url(name) for name in SHELL_FILES] + [OFFLINE_PAGE]
    # The URLs go into the version too: during a graceful reload an old worker may hash the
    # new files but still link the old URLs; its release then gets a cache of its own
    # instead of mixing two releases' files under one cache name.
    mixed = "\0".join([release_version(current_app), *shell])
    version = hashlib.sha256(mixed.encode()).hexdigest()[:16]
    release = json.dumps({"version": version, "shell": shell}, sort_keys=True)
    body = f"self.RELEASE = {release};\n" + _worker_source(current_app)
    response = current_app.response_class(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    # no-cache: a browser may keep it, but asks us (If-None-Match) before each use.
    response.headers["Cache-Control"] = "no-cache"
    response.set_etag(hashlib.sha256(body.encode()).hexdigest()[:32])
    return response.make_conditional(request)


def asset_url(filename: str) -> str:
    """The URL a page uses for a static file (with its content hash), from base.html's asset()."""
    return current_app.jinja_env.globals["asset"](filename)


def release_version(app: Flask) -> str:
    """A short hash of everything the worker caches or renders offline."""
    return _release(app)[0]


def _worker_source(app: Flask) -> str:
    return _release(app)[1]


def _release(app: Flask) -> tuple[str, str]:
    """(version, worker source), worked out once per app like asset()'s hashes."""
    cached = app.extensions.get("pro_sw_release")
    if cached is None:
        static = Path(app.static_folder)
        source = (static / "sw.js").read_text(encoding="utf-8")
        digest = hashlib.sha256()
        _add(digest, "sw.js", source.encode())
        for name in SHELL_FILES:
            _add(digest, name, (static / name).read_bytes())
        loader = app.jinja_env.loader
        for name in SHELL_TEMPLATES:
            text, _filename, _uptodate = loader.get_source(app.jinja_env, name)
            _add(digest, name, text.encode())
        folders = str(app.config.get("BABEL_TRANSLATION_DIRECTORIES") or "translations")
        for folder in folders.split(";"):
            for catalogue in sorted((Path(app.root_path) / folder).glob("*/LC_MESSAGES/*.mo")):
                language = catalogue.parent.parent.name
                _add(digest, f"{language}/{catalogue.name}", catalogue.read_bytes())
        cached = (digest.hexdigest()[:16], source)
        app.extensions["pro_sw_release"] = cached
    return cached


def _add(digest, name: str, data: bytes) -> None:
    # Name and length first, so that moving bytes from one file to the next is a change too.
    digest.update(f"{name}\0{len(data)}\0".encode())
    digest.update(data)
