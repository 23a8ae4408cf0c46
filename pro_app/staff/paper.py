"""Paper forms: enter them from paper (once, or twice with the differences resolved).

Printing is in paper_print.py.

Printing is for the site's coordinators, investigators and admins; entering for coordinators
and admins. Every page is scoped to the participant's site. A printed form is in the
participant's language, made from the same definitions as the phone pages.
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask import abort, flash, g, redirect, render_template, request
from flask import url_for as url
from flask_babel import get_locale, gettext
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..database import get_db
from ..domain.answers import DECLINED
from ..paper.compare import FILLED_ON
from ..paper.layout import paper_form
from ..paper.reading import parse_day, read_form, read_resolution
from ..paper.sheets import conditions
from ..participant.present import answer_text
from ..services import double_entry
from ..services import paper as service
from ..services.journal import latest_response
from ..storage.db import utc_now
from .access import staff_route
from .blueprint import bp
from .views import _assessment, _participant_or_404

PRINT = ("admin", "coordinator", "investigator")
ENTER = ("admin", "coordinator")


def _l(text: str) -> str:
    """Mark a text for the catalogue (pybabel extracts _l); translated when said."""
    return text


TEXTS = {
    "withdrawn": _l("%(code)s is withdrawn from the study: no answers can be entered."),
    "not_open": _l("The window of %(timepoint)s opens on %(first_day)s: enter the form then."),
    "too_late": _l(
        "The window of %(timepoint)s closed on %(last_day)s. Paper forms can be entered up to "
        "%(days)s days after that."
    ),
    "future": _l("The day the form was filled in (%(day)s) is in the future."),
    "before_window": _l("The form was filled in before the window opened (%(first_day)s)."),
    "late_reason": _l("The window closed on %(last_day)s: give the reason for the late entry."),
    "answered_phone": _l("Already answered on the phone on %(day)s: it cannot be entered again."),
    "answered_paper": _l("Already entered from paper (filled in on %(day)s)."),
    "same_staff": _l("You made the first entry. A different staff member makes the second."),
    "entries_done": _l("Both entries are made: resolve the differences."),
    "no_entries": _l("The second entry is not made yet: there is nothing to compare."),
    "not_entrant": _l("Only the two staff members who entered the form resolve the differences."),
    "no_double_entry": _l("This study does not use double data entry."),
    "double_entry": _l("This study uses double data entry: enter the form as a first entry."),
}


def say(exc: service.PaperError) -> str:
    return gettext(TEXTS[exc.key], **exc.values)


def _today(study) -> dt.date:
    return utc_now().astimezone(study.zone).date()


def _lang() -> str:
    return str(get_locale())


def _found(code: str, timepoint: str):
    """The study, the participant (site-scoped) and the assessment, or 404."""
    person = _participant_or_404(code)
    assessment = _assessment(get_db(), person, timepoint)
    if assessment is None:
        abort(404)
    return current_catalog().study, person, assessment


def _target(code: str, timepoint: str, qid: str, found=None) -> service.Target:
    study, person, assessment = found or _found(code, timepoint)
    if qid not in study.timepoint(timepoint).questionnaires:
        abort(404)
    staff = {"email": g.staff["email"], "role": g.staff["role"]}
    definition = current_catalog().questionnaires[qid]
    return service.Target(study, person, assessment, definition, staff)


# --- Entering ------------------------------------------------------------------------------


def _state(db, target: service.Target, today) -> dict:
    """Where one questionnaire of the timepoint stands, for the list of forms."""
    done = service.submitted_response(db, *target.key)
    draft = latest_response(db, *target.key)
    problem = None if done else service.entry_possible(db, target, today)
    return {
        "id": target.definition.id,
        "title": target.definition.title.get(_lang()),
        "done": done,
        "draft": draft if draft and draft["status"] == "in_progress" else None,
        "entries": service.entries(db, *target.key),
        "problem": say(problem) if problem else None,
    }


@bp.get("/participants/<code>/<timepoint>/paper/entry")
@staff_route(*ENTER)
def paper_entries(code: str, timepoint: str):
    """The timepoint's questionnaires: answered (phone or paper), in progress, to enter."""
    found = study, person, assessment = _found(code, timepoint)
    db, today = get_db(), _today(study)
    listed = [
        _state(db, _target(code, timepoint, qid, found), today)
        for qid in study.timepoint(timepoint).questionnaires
    ]
    return render_template(
        "staff/paper_entries.html",
        person=person,
        timepoint=timepoint,
        label=study.timepoint(timepoint).label.get(_lang()),
        rows=listed,
        double=study.paper.double_entry,
        late_days=study.paper.late_entry_days,
        assessment=assessment,
    )


def _entry_page(target: service.Target, *, errors, entry_number, status=200):
    definition, language = target.definition, _lang()
    form = paper_form(definition)
    made = service.entries(get_db(), *target.key)
    return render_template(
        "staff/paper_entry.html",
        person=target.participant,
        assessment=target.assessment,
        definition=definition,
        title=definition.title.get(language),
        form=form,
        conditions=conditions(form, language, gettext),
        errors=errors,
        posted=request.form,
        lang=language,
        double=target.study.paper.double_entry,
        entry_number=entry_number,
        first_by=made[0]["staff"] if made else None,
        save_id=request.form.get("save_id") or uuid.uuid4().hex,
        timepoint_label=target.study.timepoint(target.assessment["timepoint"]).label.get(language),
    ), status


@bp.route("/participants/<code>/<timepoint>/paper/entry/<qid>", methods=["GET", "POST"])
@staff_route(*ENTER)
def paper_entry(code: str, timepoint: str, qid: str):
    """Enter one paper form: the phone's items and validation, the day it was filled in."""
    target = _target(code, timepoint, qid)
    study, db, today = target.study, get_db(), _today(target.study)
    listing = url("staff.paper_entries", code=code, timepoint=timepoint)
    made = service.entries(db, *target.key)
    number = len(made) + 1 if study.paper.double_entry else None
    if study.paper.double_entry and len(made) >= 2:
        return redirect(url("staff.paper_resolve", code=code, timepoint=timepoint, qid=qid))
    if request.method == "GET":
        problem = service.entry_possible(db, target, today)
        if problem is None and made and made[0]["staff"] == target.staff["email"]:
            problem = service.PaperError("same_staff")
        if problem:
            flash(say(problem), "error")
            return redirect(listing)
        return _entry_page(target, errors=[], entry_number=number)
    filled_on = parse_day(request.form.get("filled_on", ""))
    reason = request.form.get("reason", "").strip()[:500]
    read = read_form(request.form, target.definition, filled_on or today)
    form = paper_form(target.definition)
    errors = [(f"e-{i}-0", f"{form.numbers[i]}. {m}") for i, m in read.errors.items()]
    if filled_on is None:
        errors.insert(0, ("filled_on", _("Write the day the form was filled in, e.g. 3.3.2026.")))
    if errors:
        return _entry_page(target, errors=errors, entry_number=number, status=400)
    save_id = (request.form.get("save_id") or uuid.uuid4().hex)[:64]
    dates = {"filled_on": filled_on, "reason": reason, "today": today}
    try:
        if study.paper.double_entry:
            result = double_entry.enter_double(db, target, read.values, save_id=save_id, **dates)
        else:
            outcome = service.enter(db, target, read.values, submission_id=save_id, **dates)
            result = {"entry": None, "differences": [], "outcome": outcome}
    except service.PaperError as exc:
        return _entry_page(
            target, errors=[("filled_on", say(exc))], entry_number=number, status=400
        )
    if read.ignored:
        flash(
            _(
                "Questions %(numbers)s were answered on the form but not asked (their condition "
                "did not hold): those answers are not kept.",
                numbers=", ".join(str(form.numbers[i]) for i in read.ignored),
            )
        )
    title = target.definition.title.get(_lang())
    if result["outcome"] is not None:
        _sent_notice(title, result["outcome"])
    elif result["entry"] == 1:
        flash(
            _(
                "First entry of %(title)s saved. A different staff member makes the second entry.",
                title=title,
            )
        )
    else:
        flash(
            _(
                "Second entry saved: %(count)s differences to resolve.",
                count=len(result["differences"]),
            )
        )
        return redirect(url("staff.paper_resolve", code=code, timepoint=timepoint, qid=qid))
    return redirect(listing)


def _sent_notice(title: str, outcome: dict) -> None:
    flash(_("%(title)s is entered from paper and sent in.", title=title), "saved")
    if outcome["alerts"]:
        flash(_("A safety alert was raised: see Safety alerts."), "error")
    if outcome["completed"]:
        code = outcome["receipt_code"]
        flash(_("Every questionnaire of the timepoint is in. Receipt code: %(code)s", code=code))


def _value_text(item, value, language: str):
    if item is None:  # the day the form was filled in
        return value
    if value == DECLINED:
        return _("Declined")
    if value is None:
        return _("Not answered (not asked)")
    return answer_text(item, value, language)


@bp.route("/participants/<code>/<timepoint>/paper/entry/<qid>/compare", methods=["GET", "POST"])
@staff_route(*ENTER)
def paper_resolve(code: str, timepoint: str, qid: str):
    """Double entry: every item where the two entries differ; resolve each with the paper."""
    target = _target(code, timepoint, qid)
    db, definition, language = get_db(), target.definition, _lang()
    listing = url("staff.paper_entries", code=code, timepoint=timepoint)
    try:
        service.check_open(db, target)
        found = double_entry.compare(db, target)
    except service.PaperError as exc:
        flash(say(exc), "error")
        return redirect(listing)
    made = service.entries(db, *target.key)
    errors = []
    if request.method == "POST":
        chosen, errors = read_resolution(request.form, definition, made, found)
        submission_id = (request.form.get("submission_id") or uuid.uuid4().hex)[:64]
        if not errors:
            try:
                outcome = double_entry.resolve(
                    db, target, chosen, today=_today(target.study), submission_id=submission_id
                )
            except service.PaperError as exc:
                errors = [("filled_on", say(exc))]
            else:
                flash(_("The differences are resolved."))
                _sent_notice(definition.title.get(language), outcome)
                return redirect(listing)
    rows = []
    for d in found:
        item = definition.item(d.item) if d.item != FILLED_ON else None
        first, second = (_value_text(item, v, language) for v in (d.first, d.second))
        rows.append({"difference": d, "item": item, "first": first, "second": second})
    return render_template(
        "staff/paper_resolve.html",
        person=target.participant,
        assessment=target.assessment,
        title=definition.title.get(language),
        rows=rows,
        entries=made,
        errors=errors,
        posted=request.form,
        lang=language,
        conditions=conditions(paper_form(definition), language, gettext),
        submission_id=request.form.get("submission_id") or uuid.uuid4().hex,
        can_resolve=g.staff["email"] in {e["staff"] for e in made},
    ), (400 if errors else 200)


@bp.app_context_processor
def _paper_roles():
    def paper_can(role: str, what: str) -> bool:
        """May this role print ("print") or enter ("enter") paper forms?"""
        return role in (PRINT if what == "print" else ENTER)

    return {"paper_can": paper_can}
