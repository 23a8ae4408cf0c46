"""Staff review of responses: answers per timepoint, versions, change requests and sign-off.

Who may do what (docs/decisions/0026-corrections-and-sign-off.md): every staff role may see
(coordinators and investigators at their sites); investigators request corrections and
sign off; investigators and coordinators decide on requests; admins and data managers only
look (every POST here answers them 403).
"""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..database import get_db
from ..domain.paths import visible_items
from ..participant.limits import client_key
from ..services import corrections, participants, signoff
from ..services.journal import current_answers
from ..storage.contacts import cipher_for
from ..storage.db import one, rows
from . import accounts, sessions
from .access import ALL_STAFF, require_site, second_factor_required, staff_route, visible_sites
from .auth import _account_key
from .blueprint import bp
from .review_words import (
    FormProblem,
    _language,
    answer_words,
    local_time,
    meaning_words,
    questionnaire_title,
    say,
    score_label,
    score_words,
    source_words,
    status_words,
)


@bp.app_context_processor
def _review_helpers():
    return {
        "answer_words": answer_words,
        "score_words": score_words,
        "local_time": local_time,
        "source_words": source_words,
        "source_of": signoff.source_of,
        "status_words": status_words,
        "review_summary": review_summary,
        "title_of": lambda definition: questionnaire_title(definition.id),
        "item_text": lambda item: (item.short or item.text).get(_language()),
        "meaning_words": meaning_words,
        "questionnaire_title": questionnaire_title,
        "score_label": score_label,
    }


# Reading ------------------------------------------------------------------------------


def _participant(code: str) -> dict:
    row = participants.by_code(get_db(), code)
    if row is None:
        abort(404)
    require_site(g.staff, current_catalog().study, row["site"])
    return row


def _assessment(person: dict, timepoint: str) -> dict:
    found = one(
        get_db(),
        "SELECT * FROM assessments WHERE participant_id = ? AND timepoint = ?",
        [person["id"], timepoint],
    )
    if found is None:
        abort(404)
    return found


def _alerts(db, response_uuid: str) -> list[dict]:
    return rows(
        db,
        "SELECT al.id, al.alert, al.raised_at, r.questionnaire, r.version, k.staff AS ack_by,"
        " k.at AS ack_at, k.note AS ack_note FROM alerts al"
        " JOIN responses r ON r.id = al.response_id"
        " LEFT JOIN alert_acks k ON k.alert_id = al.id WHERE r.uuid = ? ORDER BY al.id",
        [response_uuid],
    )


def _questionnaire_rows(db, catalog, assessment: dict, sites) -> list[dict]:
    """Each questionnaire of the timepoint: its newest response and what belongs to it."""
    timepoint = catalog.study.timepoint(assessment["timepoint"])
    waiting = corrections.listing(
        db, sites=sites, participant_id=assessment["participant_id"], status="requested"
    )
    found = []
    for qid in timepoint.questionnaires:
        definition = catalog.questionnaires.get(qid)
        response = one(
            db,
            "SELECT * FROM responses WHERE assessment_id = ? AND questionnaire = ?"
            " AND status != 'superseded' ORDER BY status = 'submitted' DESC, version DESC LIMIT 1",
            [assessment["id"], qid],
        )
        submitted = bool(response) and response["status"] == "submitted"
        entry = {"id": qid, "definition": definition, "response": response, "submitted": submitted}
        if submitted:
            answers = current_answers(db, response["id"])
            entry.update(
                answers=answers,
                scores=corrections.scores_of(db, response["id"]),
                alerts=_alerts(db, response["uuid"]),
                source=signoff.source_of(response),
                requests=[r for r in waiting if r["response_uuid"] == response["uuid"]],
                shown=visible_items(definition, answers) if definition else (),
            )
        found.append(entry)
    return found


def review_summary(person: dict) -> list[dict]:
    """Per timepoint with submitted answers: counts, corrections, open requests, sign-off."""
    db = get_db()
    catalog = current_catalog()
    sites = visible_sites(g.staff, catalog.study)
    if person["site"] not in sites:
        return []
    open_requests: dict[str, int] = {}
    for r in corrections.listing(db, sites=sites, participant_id=person["id"], status="requested"):
        open_requests[r["timepoint"]] = open_requests.get(r["timepoint"], 0) + 1
    result = []
    for assessment in rows(
        db, "SELECT * FROM assessments WHERE participant_id = ? ORDER BY id", [person["id"]]
    ):
        counts = one(
            db,
            "SELECT COUNT(DISTINCT questionnaire) AS submitted, MAX(version) AS newest"
            " FROM responses WHERE assessment_id = ? AND status = 'submitted'",
            [assessment["id"]],
        )
        if not counts["submitted"]:
            continue
        signatures = signoff.state(db, person, assessment)
        result.append(
            {
                "timepoint": assessment["timepoint"],
                "submitted": counts["submitted"],
                "total": len(catalog.study.timepoint(assessment["timepoint"]).questionnaires),
                "corrected": (counts["newest"] or 1) > 1,
                "open_requests": open_requests.get(assessment["timepoint"], 0),
                "signature": signatures[0] if signatures else None,
            }
        )
    return result


def _render_review(person, assessment, *, error=None, name=None, status=200):
    catalog = current_catalog()
    db = get_db()
    sites = visible_sites(g.staff, catalog.study)
    return render_template(
        "staff/review.html",
        person=person,
        assessment=assessment,
        label=catalog.study.timepoint(assessment["timepoint"]).label.get(_language()),
        questionnaires=_questionnaire_rows(db, catalog, assessment, sites),
        signatures=signoff.state(db, person, assessment),
        can_request=corrections.may_request(g.staff),
        can_sign=g.staff["role"] in signoff.SIGNERS,
        second_factor=second_factor_required(),
        signer_name=signoff.last_name_used(db, g.staff["email"]) if name is None else name,
        error=error,
    ), status


@bp.get("/participants/<code>/review/<timepoint>")
@staff_route(*ALL_STAFF)
def review(code: str, timepoint: str):
    """A timepoint's responses: answers, scores, source, versions, alerts and signatures."""
    person = _participant(code)
    return _render_review(person, _assessment(person, timepoint))


def _response(person: dict, response_uuid: str) -> dict:
    newest = corrections.newest(get_db(), response_uuid)
    if newest is None or newest["participant_id"] != person["id"]:
        abort(404)
    return newest


@bp.get("/participants/<code>/responses/<response_uuid>")
@staff_route(*ALL_STAFF)
def response_history(code: str, response_uuid: str):
    """Every version of a response, with what changed between them, by whom and why."""
    person = _participant(code)
    newest = _response(person, response_uuid)
    definition = current_catalog().questionnaires.get(newest["questionnaire"])
    versions = corrections.history(get_db(), definition, response_uuid)
    return render_template(
        "staff/response_history.html",
        person=person,
        newest=newest,
        definition=definition,
        versions=list(reversed(versions)),
    )


def _confirm_password(db) -> None:
    """Check the signed-in person's password again (throttled like sign-in)."""
    if sessions.blocked(db, *_throttle_keys()):
        raise FormProblem("blocked")
    row = accounts.check_password(db, g.staff["email"], request.form.get("password", "")[:256])
    if row is None or row["id"] != g.staff["id"]:
        sessions.record_failure(db, *_throttle_keys())
        raise FormProblem("wrong_password")


def _throttle_keys() -> tuple[str, str]:
    """The sign-in throttle's keys: a wrong password here counts as a failed sign-in."""
    return _account_key(g.staff["email"]), client_key("login")


# Sign-off -----------------------------------------------------------------------------


@bp.post("/participants/<code>/review/<timepoint>/sign")
@staff_route(*signoff.SIGNERS)
def sign_off(code: str, timepoint: str):
    """Sign the timepoint's current responses with the password (and code) and a meaning."""
    person = _participant(code)
    assessment = _assessment(person, timepoint)
    db = get_db()
    second = second_factor_required()
    name, meaning = request.form.get("name", "")[:400], request.form.get("meaning", "")
    try:
        # The form first, so that a mistake there does not use up the code.
        signoff.checked_form(name, meaning)
        if not signoff.content(db, person, assessment)["responses"]:
            raise signoff.SignError("nothing", "nothing is submitted at this timepoint yet")
        _confirm_password(db)
        if second and not accounts.check_code(
            db, g.staff, request.form.get("code", ""), cipher_for(current_app.config)
        ):
            sessions.record_failure(db, *_throttle_keys())
            raise FormProblem("wrong_code")
        signoff.sign(
            db,
            participant=person,
            assessment=assessment,
            staff=g.staff,
            name=name,
            meaning=meaning,
            second_factor=second,
        )
    except (signoff.SignError, FormProblem) as exc:
        return _render_review(person, assessment, error=say(exc), name=name, status=400)
    flash(_("Signed: %(timepoint)s is reviewed.", timepoint=timepoint))
    return redirect(url_for("staff.review", code=code, timepoint=timepoint), 303)
