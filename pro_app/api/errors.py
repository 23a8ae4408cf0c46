"""Every API answer is JSON, errors too: {"error": {"code", "message", "request_id"}}."""

from __future__ import annotations

import json
import logging

from flask import Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..errors import request_id
from ..security import API_PREFIX

log = logging.getLogger(__name__)

# Codes for the HTTP errors the API can answer (the OpenAPI document lists them).
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "server_error",
}


class ApiError(Exception):
    """An error answer: HTTP status, a short code and a message saying what to fix."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    """JSON in the order built (Flask's jsonify sorts keys: answers keep definition order)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    response = current_app.response_class(body, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    error = {"code": code, "message": message, "request_id": request_id()}
    return json_response({"error": error}, status, headers)


def api_error(error: ApiError):
    return error_response(error.status, error.code, error.message, error.headers)


def http_error(error: HTTPException):
    """Werkzeug's errors (unknown route, method, ...) as JSON; 405 keeps its Allow header."""
    status = error.code or 500
    headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
    messages = {
        404: f"There is no {request.path} in the API; see /api/v1/openapi.json.",
        405: f"{request.method} is not allowed here; allowed: {headers.get('Allow', 'GET')}.",
    }
    message = messages.get(status, error.description or "The request cannot be answered.")
    return error_response(status, CODES.get(status, "error"), message, headers)


def server_error(error: Exception):
    original = getattr(error, "original_exception", None) or error
    log.error("API request %s failed", request_id(), exc_info=original)
    return error_response(
        500, "server_error", f"Something went wrong on the server (request {request_id()})."
    )


def routing_failure():
    """Unknown paths and methods under the API answer in JSON too.

    Routing fails before a blueprint is chosen, so a blueprint's error handlers never see
    these; an app-wide before-request hook answers them (it runs before the failure is
    raised) and leaves every other path to the app's own error pages.
    """
    failure = request.routing_exception
    if failure is not None and request.path.startswith(API_PREFIX):
        if isinstance(failure, HTTPException) and failure.code in (404, 405):
            return http_error(failure)
    return None
