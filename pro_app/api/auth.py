"""Bearer tokens on every API route; each route declares the roles it allows."""

from __future__ import annotations

import functools

from flask import g, request

from ..catalog import current_catalog
from ..database import get_db
from ..services import api_tokens
from .errors import ApiError

# endpoint -> roles allowed; the API's role-matrix test fails for a route not listed here.
API_ROUTE_ROLES: dict[str, tuple[str, ...]] = {}
EVERY_ROLE = ("admin", "data_manager", "coordinator", "investigator")
# Answers and scores, and whole-study files, only for the roles that see every site's data.
DATA_ROLES = ("admin", "data_manager")
ALL_SITES = ("admin", "data_manager")


def _bearer() -> str | None:
    """The token from 'Authorization: Bearer <token>' (never from the URL), or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(message: str, error: str | None = None) -> ApiError:
    challenge = 'Bearer realm="api"' + (f', error="{error}"' if error else "")
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": challenge})


def token_route(*roles: str):
    """Let only a live API token of one of roles use the view (401 without one, 403 else)."""

    def decorate(view):
        API_ROUTE_ROLES[f"api.{view.__name__}"] = roles

        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            token = _bearer()
            if token is None:
                raise _unauthorized(
                    "Send an API token in the header 'Authorization: Bearer <token>' (never"
                    " in the URL). An admin makes one with 'flask api-token create'."
                )
            row = api_tokens.authenticate(get_db(), token)
            if row is None:
                raise _unauthorized(
                    "The API token is unknown, revoked or expired.", error="invalid_token"
                )
            if row["role"] not in roles:
                raise ApiError(
                    403,
                    "forbidden",
                    f"A {row['role']} token may not use {request.path}"
                    f" (allowed: {', '.join(roles)}).",
                )
            g.api_token = row
            return view(*args, **kwargs)

        return wrapped

    return decorate


def actor() -> str:
    """Who the audit log names for this request: the token's id and name."""
    return f"api-token:{g.api_token['id']}:{g.api_token['name']}"


def visible_sites() -> tuple[str, ...]:
    """The sites this token sees: every site, or its own (site roles)."""
    study_sites = tuple(s.id for s in current_catalog().study.sites)
    if g.api_token["role"] in ALL_SITES:
        return study_sites
    return tuple(s for s in study_sites if s in g.api_token["sites"])
