"""The admin's page for API tokens: make one (shown once), see them all, revoke one."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..database import get_db
from ..services import api_tokens
from .access import staff_route
from .accounts import ROLES, SITE_ROLES
from .blueprint import bp


def _problem(name: str, role: str, sites: tuple, days: str) -> str | None:
    """What is wrong with the form, in the reader's language (None: fine)."""
    if not name or len(name) > api_tokens.MAX_NAME:
        return _("Give the token a name: what will use it (at most 100 characters).")
    if role not in ROLES:
        return _("Choose a role.")
    if role in SITE_ROLES and not sites:
        return _("A token for a coordinator or investigator needs at least one site.")
    if role not in SITE_ROLES and sites:
        return _("A token for an admin or data manager sees every site: choose no site.")
    if days and (not days.isdigit() or not 1 <= int(days) <= api_tokens.MAX_DAYS):
        return _("Write the number of days the token lasts (1 to 3650), or leave it empty.")
    return None


def _page(error=None, token=None, created=None, status=200):
    study = current_catalog().study
    page = render_template(
        "staff/api_tokens.html",
        tokens=api_tokens.list_tokens(get_db()),
        roles=ROLES,
        sites=study.sites,
        error=error,
        token=token,
        created=created,
    )
    return page, status


@bp.route("/api-tokens", methods=["GET", "POST"])
@staff_route("admin")
def api_token_list():
    """Every token (never the token itself); the form makes a new one and shows it once."""
    if request.method == "GET":
        return _page()
    name = request.form.get("name", "").strip()
    role = request.form.get("role", "")
    sites = tuple(request.form.getlist("site"))
    days = request.form.get("days", "").strip()
    problem = _problem(name, role, sites, days)
    if problem:
        return _page(error=problem, status=400)
    try:
        row, token = api_tokens.create(
            get_db(),
            current_catalog().study,
            name=name,
            role=role,
            sites=sites,
            created_by=g.staff["email"],
            expires_days=int(days) if days else None,
        )
    except api_tokens.TokenError as exc:
        return _page(error=str(exc), status=400)
    return _page(token=token, created=row)


@bp.post("/api-tokens/<int:token_id>/revoke")
@staff_route("admin")
def api_token_revoke(token_id: int):
    """Revoke a token at once (audited)."""
    try:
        row = api_tokens.revoke(get_db(), token_id, by=g.staff["email"])
    except api_tokens.TokenError:
        flash(_("That token does not exist or is already revoked."), "error")
    else:
        flash(_("The token %(name)s is revoked.", name=row["name"]))
    return redirect(url_for("staff.api_token_list"))
