"""The participant's session: started by an invite link, bound to one assessment."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from flask import abort, g, render_template, session

from ..catalog import current_catalog
from ..database import get_db
from ..services.invites import live_invite
from ..storage.db import one

IDLE_SECONDS = 60 * 60  # answers are saved on every page, so an idle end loses nothing
ABSOLUTE_SECONDS = 24 * 60 * 60
KEY = "participant"


@dataclass(frozen=True)
class Visit:
    """What the session may reach: one participant's one assessment."""

    invite_id: int
    participant: dict
    assessment: dict
    questionnaires: tuple[str, ...]


def begin(invite_id: int, language: str) -> None:
    """Start a fresh participant session (a new session id: the old cookie is dropped)."""
    session.clear()
    now = int(time.time())
    session[KEY] = {"invite": invite_id, "started": now, "seen": now}
    session["lang"] = language


def _load() -> Visit | None:
    data = session.get(KEY)
    if not isinstance(data, dict):
        return None
    now = int(time.time())
    if now - data.get("started", 0) > ABSOLUTE_SECONDS or now - data.get("seen", 0) > IDLE_SECONDS:
        session.pop(KEY, None)
        return None
    db = get_db()
    invite = live_invite(db, data.get("invite"))
    if invite is None:
        session.pop(KEY, None)
        return None
    assessment = one(db, "SELECT * FROM assessments WHERE id = ?", [invite["assessment_id"]])
    participant = one(db, "SELECT * FROM participants WHERE id = ?", [assessment["participant_id"]])
    if participant["status"] != "active":
        session.pop(KEY, None)
        return None
    if now - data.get("seen", 0) > 60:
        # Rewriting the cookie on every request costs a signature; once a minute keeps the
        # idle timeout honest to the minute.
        data["seen"] = now
        session[KEY] = data
    questionnaires = current_catalog().study.timepoint(assessment["timepoint"]).questionnaires
    return Visit(invite["id"], participant, assessment, questionnaires)


def invite_required(view):
    """Let the view run only inside a live participant session; otherwise explain."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        visit = _load()
        if visit is None:
            return render_template("participant/session_ended.html"), 401
        g.visit = visit
        g.study_code = visit.participant["study_code"]  # pseudonymous; for the log line
        return view(*args, **kwargs)

    return wrapped


def questionnaire_or_404(qid: str):
    """Return the definition if the visit's timepoint asks for it, else 404."""
    if qid not in g.visit.questionnaires:
        abort(404)
    return current_catalog().questionnaires[qid]
