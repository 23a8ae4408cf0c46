"""The API blueprint: JSON under /api/v1, bearer tokens only, errors as JSON."""

from flask import Blueprint
from werkzeug.exceptions import HTTPException

from ..security import exempt_api
from .errors import ApiError, api_error, http_error, routing_failure, server_error

ROOT = "/api/v1"

bp = Blueprint("api", __name__, url_prefix=ROOT)
exempt_api(bp)
bp.register_error_handler(ApiError, api_error)
bp.register_error_handler(HTTPException, http_error)
# An unhandled exception reaches the handlers as a 500 (code first, then class).
bp.register_error_handler(500, server_error)
bp.register_error_handler(Exception, server_error)
bp.before_app_request(routing_failure)
