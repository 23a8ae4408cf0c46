"""Staff sign-in: password, then a TOTP code (set up at first sign-in), then the pages."""

from __future__ import annotations

import hashlib

import segno
from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..database import get_db
from ..participant.limits import client_key
from ..storage import audit
from ..storage.contacts import cipher_for
from ..storage.db import write
from . import accounts, sessions
from .access import SESSION_KEY, current, second_factor_required
from .blueprint import bp
from .messages import say


def _safe_next(target: str | None) -> str:
    """Only local paths under /staff (no open redirect)."""
    if target and target.startswith("/staff") and not target.startswith("//"):
        return target
    return url_for("staff.overview")


def _account_key(email: str) -> str:
    return "login:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Email and password. Unknown accounts and wrong passwords get the same answer."""
    error = None
    if request.method == "POST":
        db = get_db()
        email = request.form.get("email", "").strip()[:254]
        keys = (_account_key(email), client_key("login"))
        if sessions.blocked(db, *keys):
            error = _("Too many failed attempts. Wait 15 minutes and try again.")
        else:
            row = accounts.check_password(db, email, request.form.get("password", "")[:256])
            if row is None:
                sessions.record_failure(db, *keys)
                error = _("The e-mail address or the password is wrong.")
            else:
                session.clear()  # a new session id at login
                secret = sessions.start(db, row["id"], second_factor=not second_factor_required())
                session[SESSION_KEY] = secret
                with_audit(db, row, "staff.login")
                if second_factor_required():
                    return redirect(url_for("staff.code", next=request.args.get("next")))
                return redirect(_safe_next(request.args.get("next")))
    status = 200 if error is None else 401
    return render_template("staff/login.html", error=error), status


def with_audit(db, row, action: str) -> None:
    with write(db):
        audit.record(
            db,
            actor=row["email"],
            role=row["role"],
            action=action,
            entity="staff",
            entity_id=row["email"],
        )


@bp.route("/login/code", methods=["GET", "POST"])
def code():
    """The second factor; the first time, set up the authenticator app."""
    visit = current()
    if visit is None:
        return redirect(url_for("staff.login"))
    db = get_db()
    row = visit["staff"]
    cipher = cipher_for(current_app.config)
    error = None
    if request.method == "POST":
        if sessions.blocked(db, _account_key(row["email"]), client_key("login")):
            error = _("Too many failed attempts. Wait 15 minutes and try again.")
        elif accounts.check_code(db, row, request.form.get("code", ""), cipher):
            sessions.upgrade_factor(db, session[SESSION_KEY])
            with_audit(db, row, "staff.second_factor")
            return redirect(_safe_next(request.args.get("next")))
        else:
            sessions.record_failure(db, _account_key(row["email"]), client_key("login"))
            error = _("The code is wrong or too old. Type the code the app shows now.")
    setup = None
    if not row["totp_confirmed_at"]:
        issuer = f"ePRO {current_catalog().study.id}"
        uri = accounts.provisioning_uri(accounts.totp_secret(row, cipher), row["email"], issuer)
        setup = {
            "uri": uri,
            "qr": segno.make(uri, error="m").svg_data_uri(scale=4),
            "secret": accounts.totp_secret(row, cipher),
        }
    return render_template("staff/code.html", error=error, setup=setup), (401 if error else 200)


@bp.route("/password", methods=["GET", "POST"])
def password():
    """Choose a new password (after a one-time password, or at any time)."""
    visit = current()
    if visit is None:
        return redirect(url_for("staff.login"))
    if second_factor_required() and not visit["session"]["second_factor"]:
        return redirect(url_for("staff.code"))
    error = None
    if request.method == "POST":
        new = request.form.get("password", "")
        if new != request.form.get("repeat", ""):
            error = _("The two passwords are not the same.")
        else:
            try:
                accounts.set_password(get_db(), visit["staff"], new, actor=visit["staff"]["email"])
                return redirect(url_for("staff.overview"))
            except accounts.AccountError as exc:
                error = say(exc)
    return render_template("staff/password.html", error=error), (400 if error else 200)


@bp.post("/logout")
def logout():
    """End the session on the server and forget the cookie."""
    visit = current()
    if visit is not None:
        with_audit(get_db(), visit["staff"], "staff.logout")
    sessions.end(get_db(), session.get(SESSION_KEY))
    session.clear()
    return redirect(url_for("staff.login"))
