"""Who may use which staff route: every route declares its roles; site scoping helpers."""

from __future__ import annotations

import functools

from flask import abort, current_app, g, redirect, request, session, url_for

from ..database import get_db
from . import sessions
from .accounts import sites_of

# endpoint -> roles allowed; the route-matrix test fails for a staff route not listed here.
ROUTE_ROLES: dict[str, tuple[str, ...]] = {}
ALL_STAFF = ("admin", "coordinator", "investigator", "data_manager")
SESSION_KEY = "staff"


def current():
    """Return the signed-in staff member's {session, staff}, or None."""
    if "staff_visit" not in g:
        g.staff_visit = sessions.load(get_db(), session.get(SESSION_KEY))
    return g.staff_visit


def second_factor_required() -> bool:
    return bool(current_app.config.get("STAFF_TOTP", True))


def staff_route(*roles: str):
    """Let only signed-in staff with one of roles (and the second factor) use the view."""

    def decorate(view):
        endpoint = f"staff.{view.__name__}"
        ROUTE_ROLES[endpoint] = roles

        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            visit = current()
            if visit is None:
                return redirect(url_for("staff.login", next=request.path))
            if second_factor_required() and not visit["session"]["second_factor"]:
                return redirect(url_for("staff.code"))
            if visit["staff"]["must_change_password"]:
                return redirect(url_for("staff.password"))
            if visit["staff"]["role"] not in roles:
                abort(403)
            g.staff = visit["staff"]
            return view(*args, **kwargs)

        return wrapped

    return decorate


def visible_sites(staff: dict, study) -> tuple[str, ...]:
    """Sites whose participants this staff member may see."""
    if staff["role"] in ("admin", "data_manager"):
        return tuple(s.id for s in study.sites)
    return sites_of(get_db(), staff["id"])


def require_site(staff: dict, study, site: str) -> None:
    """Refuse (404, not 403: do not confirm the participant exists) another site's data."""
    if site not in visible_sites(staff, study):
        abort(404)
