"""Security headers on every response."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect

csrf = CSRFProtect()
# The JSON API (pro_app/api) authenticates every request by a bearer token and reads no
# cookie, so a forged cross-site request carries no credentials: no CSRF token, no Origin
# check. Its answers hold personal data: never cached.
API_PREFIX = "/api/"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def add_headers(response: Response) -> Response:
    """Set CSP, nosniff, no-referrer and (on HTTPS) HSTS."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if response.mimetype == "text/html" or request.path.startswith(API_PREFIX):
        # Pages and API answers may show answers: never store them in a cache.
        response.headers["Cache-Control"] = "no-store"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return response


def check_origin() -> None:
    """Refuse a state-changing request whose Origin is another site (CSRF, second line)."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.path.startswith(API_PREFIX):
        return
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return
    if urlsplit(origin).netloc != request.host:
        abort(403)


def exempt_api(bp: Blueprint) -> None:
    """Let the token-authenticated API blueprint through the CSRF check (see API_PREFIX)."""
    csrf.exempt(bp)


def _csrf_failed(error: CSRFError):
    return render_template("participant/session_ended.html"), 400


def init_app(app: Flask) -> None:
    # The CSRF token lives as long as the session: a resend after a long offline spell works.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    # Flask's own defaults already hold these keys, so setdefault would do nothing.
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if str(app.config.get("BASE_URL", "")).startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
        if app.config.get("SESSION_COOKIE_NAME") == "session":
            app.config["SESSION_COOKIE_NAME"] = "__Host-session"
    csrf.init_app(app)
    app.before_request(check_origin)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.after_request(add_headers)
