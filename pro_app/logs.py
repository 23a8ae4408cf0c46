"""Structured logs: one JSON object per line, an access line per request, request ids.

What is never written: invite tokens, passwords, contact details, answers, query strings,
form data, raw paths (the route's rule is logged instead) and exception messages (they can
quote input). Client addresses only truncated (/24, /48).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
import secrets
import sys
import time
import traceback

import click
from flask import Flask, g, has_request_context, request

TOKEN_IN_PATH = re.compile(r"/i/[A-Za-z0-9_\-]{8,}")
# An id from the proxy (nginx's $request_id is 32 hex digits) is kept if it is a short
# token of safe characters; anything else is replaced by our own.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{6,64}$")
REQUEST_ID_HEADER = "X-Request-Id"
ACCESS = logging.getLogger("pro_app.access")
FORMATS = ("json", "text")
# Load balancers ask these every few seconds: log them only when they fail.
QUIET_ENDPOINTS = ("health.healthz", "health.readyz")


class RedactTokens(logging.Filter):
    """Rewrite '/i/<token>' as '/i/[token]' in a log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/i/" in message:
            record.msg = TOKEN_IN_PATH.sub("/i/[token]", message)
            record.args = None
        return True


def redact(text: str) -> str:
    return TOKEN_IN_PATH.sub("/i/[token]", text) if "/i/" in text else text


def request_id() -> str:
    """This request's id: the proxy's X-Request-Id if it is safe, else a new short one."""
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # Eight hex digits are easy to read out over the phone, and unique enough together
        # with the time of the log line.
        g.request_id = incoming if REQUEST_ID.match(incoming) else secrets.token_hex(4)
    return g.request_id


def truncated_address(address: str | None) -> str | None:
    """The client's network, not its address: IPv4 /24, IPv6 /48."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def request_fields() -> dict:
    """What every log line written during a request says about it (nothing personal)."""
    if not has_request_context():
        return {}
    rule = request.url_rule
    fields = {
        "request_id": request_id(),
        "method": request.method,
        "route": rule.rule if rule is not None else None,
        "endpoint": request.endpoint,
    }
    study_code = g.get("study_code")
    if study_code:
        fields["study_code"] = study_code
    staff = g.get("staff")
    if staff:
        fields["staff_id"] = staff["id"]
    token = g.get("api_token")
    if token:
        fields["api_token_id"] = token["id"]
    return fields


def _exception(exc_info) -> dict:
    """The exception's type and where it happened; its message is left out (input in it)."""
    kind, error, tb = exc_info
    frames = [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)]
    causes = []
    cause = (error.__cause__ or error.__context__) if error is not None else None
    while cause is not None and len(causes) < 5:
        causes.append(type(cause).__qualname__)
        cause = cause.__cause__ or cause.__context__
    found = {"type": f"{kind.__module__}.{kind.__qualname__}", "stack": frames[-15:]}
    if causes:
        found["caused_by"] = causes
    return found


def _utc(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _entry(record: logging.LogRecord) -> dict:
    entry = {
        "time": _utc(record.created),
        "level": record.levelname,
        "logger": record.name,
        "message": redact(record.getMessage()),
    }
    entry.update(request_fields())
    entry.update(getattr(record, "fields", None) or {})
    if record.exc_info and record.exc_info[0] is not None:
        entry["exception"] = _exception(record.exc_info)
    return entry


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request fields."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_entry(record), ensure_ascii=False, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """The same fields as one readable line (the demo's default)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(record)
        head = f"{entry.pop('time')} {entry.pop('level')} {entry.pop('logger')}"
        message = entry.pop("message")
        error = entry.pop("exception", None)
        rest = " ".join(f"{k}={v}" for k, v in entry.items() if v is not None)
        line = f"{head}: {message}" + (f" [{rest}]" if rest else "")
        if error:
            line += f"\n  {error['type']}\n  " + "\n  ".join(error["stack"])
        return line


class _StderrHandler(logging.StreamHandler):
    """Write to the current sys.stderr (so a replaced stderr, as in tests, is honoured)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class LogFormatError(click.ClickException):
    """PRO_LOG_FORMAT names no known format (a plain error under `flask`, not a traceback)."""


def log_format(config) -> str:
    """PRO_LOG_FORMAT, or json (text in the demo)."""
    chosen = config.get("LOG_FORMAT") or ("text" if config.get("DEMO") else "json")
    if chosen not in FORMATS:
        raise LogFormatError(f"PRO_LOG_FORMAT is '{chosen}'; use 'json' or 'text'")
    return chosen


def configure(fmt: str) -> None:
    """Send the app's log records (logger 'pro_app' and below) to stderr in this format."""
    from flask.logging import default_handler

    logger = logging.getLogger("pro_app")
    # Ours replaces an earlier app's (tests build many) and Flask's plain-text default.
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    logger.removeHandler(default_handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def start_request() -> None:
    request_id()
    g.request_started = time.perf_counter()


def finish_request(response):
    """Return the request id to the client and write one access line."""
    response.headers[REQUEST_ID_HEADER] = request_id()
    if request.endpoint in QUIET_ENDPOINTS and response.status_code < 400:
        return response
    started = g.get("request_started")
    fields = {
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
        "client": truncated_address(request.remote_addr),
    }
    level = logging.ERROR if response.status_code >= 500 else logging.INFO
    ACCESS.log(level, "request", extra={"fields": fields})
    return response


def init_app(app: Flask) -> None:
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
    configure(log_format(app.config))
    app.before_request(start_request)
    app.after_request(finish_request)
