"""Participant routes: one page route and one handler per kind of page."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..database import get_db
from ..domain.paths import page_path, visible_items
from ..services import invites, journal
from ..services.submit import Incomplete, submit
from ..storage.db import one, utc_now
from . import limits
from .forms import read_page
from .present import answer_text, long_date
from .session import begin, invite_required, questionnaire_or_404

bp = Blueprint("participant", __name__)
SUPPORT = "support"


def _language() -> str:
    return str(get_locale())


def _actor() -> str:
    return f"participant:{g.visit.participant['study_code']}"


# --- The invite link -------------------------------------------------------------------------


@bp.get("/i/<token>")
def start(token: str):
    """Show the start page; opening a link changes nothing (mail scanners open links)."""
    found = invites.resolve(get_db(), token, utc_now())
    if found.participant and "lang" not in request.args and "lang" not in session:
        g.language_hint = found.participant["language"]
    return _link_page(found)


def _link_page(found):
    study = current_catalog().study
    if found.status == "unknown":
        return render_template("participant/link_invalid.html"), 404
    timepoint = study.timepoint(found.assessment["timepoint"])
    context = {
        "timepoint": timepoint.label.get(_language()),
        "first_day": long_date(found.assessment["first_day"]),
        "last_day": long_date(found.assessment["last_day"]),
    }
    if found.status == "expired":
        return render_template("participant/link_expired.html", **context), 410
    if found.status == "upcoming":
        return render_template("participant/link_upcoming.html", **context)
    if found.status == "finished":
        return render_template("participant/link_finished.html", **context)
    count = len(timepoint.questionnaires)
    return render_template("participant/start.html", count=count, **context)


@bp.post("/i/<token>")
def exchange(token: str):
    """Swap the token for a session and redirect, so the token leaves the address bar."""
    if not limits.allow(limits.client_key("invite"), limit=30, window_seconds=600):
        return render_template("participant/too_many.html"), 429
    db = get_db()
    found = invites.resolve(db, token, utc_now())
    if found.status != "ok":
        return _link_page(found)
    invites.mark_used(
        db, found.invite["id"], found.participant["study_code"], found.assessment["timepoint"]
    )
    begin(found.invite["id"], session.get("lang") or found.participant["language"])
    for qid in current_catalog().study.timepoint(found.assessment["timepoint"]).questionnaires:
        response = journal.latest_response(db, found.assessment["id"], qid)
        if response and response["status"] == "in_progress":
            return redirect(url_for(".resume", qid=qid))
    return redirect(url_for(".overview"))


# --- Overview, resume, receipt ---------------------------------------------------------------


def _status(qid: str) -> dict:
    db = get_db()
    definition = current_catalog().questionnaires[qid]
    response = journal.latest_response(db, g.visit.assessment["id"], qid)
    answers = journal.current_answers(db, response["id"]) if response else {}
    shown = visible_items(definition, answers)
    done = sum(1 for i in shown if answers.get(i) is not None)
    state = response["status"] if response else "new"
    if state == "in_progress" and not done:
        state = "new"
    language = _language()
    title = definition.title.get(language)
    return {"id": qid, "title": title, "state": state, "done": done, "total": len(shown)}


@bp.get("/a")
@invite_required
def overview():
    """The timepoint's questionnaires and how far along each is."""
    assessment = one(get_db(), "SELECT * FROM assessments WHERE id = ?", [g.visit.assessment["id"]])
    if assessment["completed_at"]:
        return redirect(url_for(".receipt"))
    timepoint = current_catalog().study.timepoint(assessment["timepoint"])
    rows = [_status(qid) for qid in g.visit.questionnaires]
    return render_template(
        "participant/overview.html",
        rows=rows,
        timepoint=timepoint.label.get(_language()),
        last_day=long_date(assessment["last_day"]),
        support=session.get(SUPPORT),
    )


@bp.get("/a/<qid>")
@invite_required
def resume(qid: str):
    """Continue at the first page with an unanswered question (or the review page)."""
    definition = questionnaire_or_404(qid)
    response = journal.latest_response(get_db(), g.visit.assessment["id"], qid)
    if response and response["status"] != "in_progress":
        return redirect(url_for(".overview"))
    answers = journal.current_answers(get_db(), response["id"]) if response else {}
    for number, page in enumerate(page_path(definition, answers), 1):
        shown = [i for i in page.items if i in visible_items(definition, answers)]
        if any(answers.get(i) is None for i in shown):
            return redirect(url_for(".page", qid=qid, number=number))
    return redirect(url_for(".review", qid=qid))


@bp.get("/a/receipt")
@invite_required
def receipt():
    """The receipt code for the whole timepoint, and what happens next."""
    assessment = one(get_db(), "SELECT * FROM assessments WHERE id = ?", [g.visit.assessment["id"]])
    if not assessment["completed_at"]:
        return redirect(url_for(".overview"))
    return render_template(
        "participant/receipt.html", code=assessment["receipt_code"], support=session.get(SUPPORT)
    )


# --- Questionnaire pages -----------------------------------------------------------------------


def _fields(definition, page, answers, errors=None, confirm=()):
    language = _language()
    shown = visible_items(definition, answers)
    return [
        {
            "item": definition.item(i),
            "value": answers.get(i),
            "error": (errors or {}).get(i),
            "confirm": i in confirm,
            "text": definition.item(i).text.get(language),
        }
        for i in page.items
        if i in shown
    ]


def _render_page(definition, path, number, answers, errors=None, confirm=()):
    page = path[number - 1]
    fields = _fields(definition, page, answers, errors, confirm)
    language = _language()
    heading = page.title.get(language) if page.title else None
    return render_template(
        "participant/page.html",
        definition=definition,
        fields=fields,
        number=number,
        total=len(path),
        heading=heading,
        intro=page.intro.get(language) if page.intro else None,
        title=definition.title.get(language),
        save_id=uuid.uuid4().hex,
        instructions=definition.instructions.get(language) if number == 1 else None,
        recall=definition.recall.get(language) if definition.recall else None,
        errors=[(f["item"].id, f["error"]) for f in fields if f["error"]]
        + [
            (
                f["item"].id,
                _(
                    "You have not answered. Choose an answer, or select Next again "
                    "to skip the question."
                ),
            )
            for f in fields
            if f["confirm"]
        ],
    )


@bp.route("/a/<qid>/<int:number>", methods=["GET", "POST"])
@invite_required
def page(qid: str, number: int):
    """One page of a questionnaire: GET shows it, POST saves first and then moves on."""
    definition = questionnaire_or_404(qid)
    db = get_db()
    response = journal.latest_response(db, g.visit.assessment["id"], qid)
    if response and response["status"] != "in_progress":
        flash(_("This questionnaire has been sent. The answers can no longer be changed."))
        return redirect(url_for(".overview"))
    answers = journal.current_answers(db, response["id"]) if response else {}
    path = page_path(definition, answers)
    if not 1 <= number <= len(path):
        return redirect(url_for(".resume", qid=qid))
    if request.method == "GET":
        return _render_page(definition, path, number, answers)
    response = response or journal.start(
        db,
        g.visit.assessment["id"],
        definition,
        actor=_actor(),
        entity=g.visit.assessment["timepoint"],
    )
    current = path[number - 1]
    shown = [definition.item(f["item"].id) for f in _fields(definition, current, answers)]
    today = utc_now().astimezone(current_catalog().study.zone).date()
    posted = read_page(request.form, shown, answers, today)
    save_id = request.form.get("save_id") or uuid.uuid4().hex
    saved = journal.save_page(
        db,
        response,
        number,
        posted.values,
        save_id=save_id[:64],
        actor=_actor(),
        client_time=request.form.get("client_time", "")[:40] or None,
    )
    answers = saved if saved is not None else journal.current_answers(db, response["id"])
    action = request.form.get("action", "next")
    if action in ("nb", "en"):
        return redirect(url_for(".page", qid=qid, number=number, lang=action))
    if action == "back":
        return redirect(
            url_for(".page", qid=qid, number=number - 1) if number > 1 else url_for(".overview")
        )
    if posted.errors or posted.confirm:
        return _render_page(
            definition,
            page_path(definition, answers),
            number,
            answers,
            posted.errors,
            posted.confirm,
        )
    # "Saved" travels in the address, not the session: no cookie to re-sign on every save.
    new_path = page_path(definition, answers)
    position = next((n for n, p in enumerate(new_path, 1) if p is current), number)
    if position >= len(new_path):
        return redirect(url_for(".review", qid=qid, saved=1))
    return redirect(url_for(".page", qid=qid, number=position + 1, saved=1))


# --- Review and submit -------------------------------------------------------------------------


@bp.route("/a/<qid>/review", methods=["GET", "POST"])
@invite_required
def review(qid: str):
    """Check your answers, then send them in (once, whatever the number of taps)."""
    definition = questionnaire_or_404(qid)
    db = get_db()
    response = journal.latest_response(db, g.visit.assessment["id"], qid)
    if response is None:
        return redirect(url_for(".resume", qid=qid))
    if request.method == "POST":
        return _submit(definition, response)
    if response["status"] != "in_progress":
        return redirect(url_for(".overview"))
    answers = journal.current_answers(db, response["id"])
    language = _language()
    rows = []
    shown = visible_items(definition, answers)
    for number, page_ in enumerate(page_path(definition, answers), 1):
        for item_id in page_.items:
            if item_id in shown:
                item = definition.item(item_id)
                rows.append(
                    {
                        "question": item.text.get(language),
                        "number": number,
                        "answer": answer_text(item, answers.get(item_id), language),
                        "missing": answers.get(item_id) is None,
                    }
                )
    return render_template(
        "participant/review.html",
        rows=rows,
        qid=qid,
        title=definition.title.get(language),
        submission_id=uuid.uuid4().hex,
        complete=not any(r["missing"] for r in rows),
    )


def _submit(definition, response):
    # A repeat (double tap, retry, second tab) gets its receipt whatever the rate: only
    # attempts at a response still open count against the limit.
    if response["status"] == "in_progress" and not limits.allow(
        f"submit:{g.visit.invite_id}", limit=120, window_seconds=60
    ):
        return render_template("participant/too_many.html"), 429
    db = get_db()
    submission_id = (request.form.get("submission_id") or uuid.uuid4().hex)[:64]
    try:
        outcome = submit(
            db,
            response=response,
            definition=definition,
            assessment=g.visit.assessment,
            participant=g.visit.participant,
            timepoint_questionnaires=g.visit.questionnaires,
            submission_id=submission_id,
            actor=_actor(),
        )
    except Incomplete as exc:
        answers = journal.current_answers(db, response["id"])
        for number, page_ in enumerate(page_path(definition, answers), 1):
            if exc.item in page_.items:
                flash(_("Answer this question before you send in the questionnaire."), "error")
                return redirect(url_for(".page", qid=definition.id, number=number))
        abort(409)
    if outcome["alerts"]:
        session[SUPPORT] = True
    if not outcome["repeated"]:
        flash(_("Your answers have been sent"), "saved")
    if outcome["completed"]:
        return redirect(url_for(".receipt"))
    return redirect(url_for(".overview"))


@bp.get("/offline")
def offline():
    """Shown by the service worker when a page cannot be fetched."""
    return render_template("participant/offline.html")


@bp.app_context_processor
def _support_contact():
    visit = g.get("visit")
    site = None
    if visit is not None:
        site = next(
            (s for s in current_catalog().study.sites if s.id == visit.participant["site"]), None
        )
    return {"site": site, "base_url": current_app.config["BASE_URL"]}
