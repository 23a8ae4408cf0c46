"""Generic error pages with a request id; no stack traces reach the browser."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, g, render_template
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


def request_id() -> str:
    """A short id for this request, shown on error pages and written to the log."""
    if "request_id" not in g:
        g.request_id = secrets.token_hex(4)
    return g.request_id


def _http_error(error: HTTPException):
    return render_template("error.html", code=error.code, request_id=request_id()), error.code


def _server_error(error: Exception):
    log.error("request %s failed", request_id(), exc_info=error)
    return render_template("error.html", code=500, request_id=request_id()), 500


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.register_error_handler(Exception, _server_error)
