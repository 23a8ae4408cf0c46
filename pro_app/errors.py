"""Generic error pages with a request id; no stack traces reach the browser."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from .logs import request_id

log = logging.getLogger(__name__)

__all__ = ["request_id", "init_app"]


def _page(code: int):
    # The id on the page is the one in the log line: a participant can quote it.
    audience = "staff" if request.blueprint == "staff" else "participant"
    return render_template("error.html", code=code, request_id=request_id(), audience=audience)


def _http_error(error: HTTPException):
    return _page(error.code), error.code


def _server_error(error: Exception):
    original = getattr(error, "original_exception", None) or error
    # The log line has the request id, route and the exception's type and stack, never its
    # message or local values (pro_app/logs.py).
    log.error("request failed", exc_info=original)
    return _page(500), 500


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.register_error_handler(Exception, _server_error)
