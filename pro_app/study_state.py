"""The study's state: open, or locked (read-only) once the last answers are in.

The state is the newest row of `study_state` (none: open). While the study is locked,
nothing changes: participants' pages show that the study is closed, staff requests that
change something are refused (exports, the sync, sign-in and the audit log still work),
and the commands that change data call ensure_open() first.
"""

from __future__ import annotations

import sqlite3

from flask import Flask, g, render_template, request, session
from flask_babel import format_date, get_locale
from flask_babel import gettext as _

from .catalog import current_catalog
from .database import get_db
from .storage import audit
from .storage.db import one, parse_stamp, stamp, utc_now, write

OPEN, LOCKED = "open", "locked"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Staff requests that still work while the study is locked: signing in and out, starting an
# export job, sending dead sync messages again, API tokens (read-only access for the final
# pulls) and acknowledging a safety alert (following up a participant is never blocked).
ALLOWED_WHEN_LOCKED = frozenset(
    {
        "staff.login",
        "staff.code",
        "staff.password",
        "staff.logout",
        "staff.exports",
        "staff.sync_retry",
        "staff.api_token_list",
        "staff.api_token_revoke",
        "staff.acknowledge",
    }
)
# Blueprints that never change study data: the token API (read-only), the PWA files, the
# front page and static files.
UNGUARDED_BLUEPRINTS = frozenset({"api", "pwa", "public"})
PARTICIPANT_OPEN = frozenset({"participant.offline"})


class StudyLocked(RuntimeError):
    """A change was asked for while the study is locked."""

    def __init__(self, state: dict):
        self.state = state
        super().__init__(
            f"the study is locked (since {state['at']}, by {state['actor']}: {state['reason']}):"
            " nothing can be changed. Exports, the audit log and the sync still work. An admin"
            " can unlock it with 'flask --app pro_app study unlock --by EMAIL --reason TEXT'."
        )


class StateError(ValueError):
    """A lock or unlock that cannot be done; the message says why and what to do."""


def current(db) -> dict | None:
    """The newest state change (id, state, at, actor, reason), or None: never changed."""
    try:
        return one(db, "SELECT * FROM study_state ORDER BY id DESC LIMIT 1")
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None  # a database from before 0009_study_state: never locked
        raise


def is_locked(db) -> bool:
    """True when the study is locked now."""
    row = current(db)
    return row is not None and row["state"] == LOCKED


def ensure_open(db) -> None:
    """Raise StudyLocked when the study is locked (for changes that do not come over HTTP)."""
    row = current(db)
    if row is not None and row["state"] == LOCKED:
        raise StudyLocked(row)


def change(db, new_state: str, *, by: str, reason: str) -> dict:
    """Lock or unlock the study: only an active admin, with a reason; audited. Return the row."""
    from .staff.accounts import by_email  # accounts import audit and db only, never Flask

    if new_state not in (OPEN, LOCKED):
        raise StateError(f"unknown state '{new_state}' (use {OPEN} or {LOCKED})")
    reason = (reason or "").strip()
    if not reason:
        raise StateError("give a reason (--reason TEXT): it is kept in the audit log")
    staff = by_email(db, by or "")
    if staff is None or staff["role"] != "admin" or staff["disabled_at"]:
        raise StateError(f"{by} is not an active admin account: only an admin may do this")
    with write(db):
        before = current(db)  # read inside the transaction: no other change can come between
        old = before["state"] if before else OPEN
        if old == new_state:
            since = f" since {before['at']} ({before['actor']})" if before else ""
            raise StateError(f"the study is already {new_state}{since}")
        at = stamp()
        cursor = db.execute(
            "INSERT INTO study_state (state, at, actor, reason) VALUES (?, ?, ?, ?)",
            (new_state, at, staff["email"], reason),
        )
        audit.record(
            db,
            actor=staff["email"],
            role=staff["role"],
            action="study.lock" if new_state == LOCKED else "study.unlock",
            entity="study",
            entity_id=None,
            field="state",
            old=old,
            new=new_state,
            reason=reason,
            at=at,
        )
    return one(db, "SELECT * FROM study_state WHERE id = ?", [cursor.lastrowid])


def history(db) -> list[dict]:
    """Every state change, oldest first."""
    try:
        return [dict(r) for r in db.query("SELECT * FROM study_state ORDER BY id")]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


# --- The request hook ------------------------------------------------------------------------


def _state_now() -> dict | None:
    """The state for this request, read once (a single indexed row)."""
    if "study_state" not in g:
        g.study_state = current(get_db())
    return g.study_state


def _locked_now() -> dict | None:
    state = _state_now()
    return state if state is not None and state["state"] == LOCKED else None


def _when(text: str) -> str:
    """A stored UTC time as «3. mars 2027 kl. 14.30» in the study's time zone."""
    moment = parse_stamp(text).astimezone(current_catalog().study.zone)
    clock = moment.strftime("%H.%M" if str(get_locale()) == "nb" else "%H:%M")
    return _("%(date)s at %(time)s", date=format_date(moment, "long", rebase=False), time=clock)


def _participant_closed():
    token = (request.view_args or {}).get("token")
    if token and "lang" not in session and request.args.get("lang") is None:
        # A link opened in a fresh browser: answer in the participant's own language.
        from .services.invites import resolve

        found = resolve(get_db(), token, utc_now())
        if found.participant:
            g.language_hint = found.participant["language"]
    return render_template("participant/study_closed.html"), 423


def _staff_refused(state: dict):
    from .staff.access import current as signed_in

    visit = signed_in()
    # Who locked it, and when, is for signed-in staff only.
    return render_template(
        "staff/study_locked.html",
        since=_when(state["at"]) if visit else None,
        by=state["actor"] if visit else None,
        reason=state["reason"] if visit else None,
    ), 423


def guard():
    """Before each request: while the study is locked, refuse what would change data."""
    endpoint = request.endpoint
    if endpoint is None or request.blueprint in UNGUARDED_BLUEPRINTS or endpoint == "static":
        return None
    if request.blueprint == "participant":
        # Every participant page leads to a save or a submit, so every page but the offline
        # one says the study is closed (a start button that then fails would mislead).
        if endpoint in PARTICIPANT_OPEN:
            return None
        return _participant_closed() if _locked_now() else None
    if request.method in SAFE_METHODS or endpoint in ALLOWED_WHEN_LOCKED:
        return None
    state = _locked_now()
    return _staff_refused(state) if state else None


def init_app(app: Flask) -> None:
    """Register the lock check on every request."""
    app.before_request(guard)
