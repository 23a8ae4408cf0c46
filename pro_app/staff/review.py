"""Staff review of responses: answers per timepoint, versions, change requests and sign-off.

Who may do what (docs/decisions/0026-corrections-and-sign-off.md): every staff role may see
(coordinators and investigators at their sites); investigators request corrections and
sign off; investigators and coordinators decide on requests; admins and data managers only
look (every POST here answers them 403).
"""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..database import get_db
from ..domain.answers import DECLINED, NOT_APPLICABLE
from ..domain.model import BandsRule, CutoffRule, MultipleChoice, SingleChoice, YesNo
from ..domain.paths import visible_items
from ..participant.limits import client_key
from ..services import corrections, participants, signoff
from ..services.journal import current_answers
from ..storage.contacts import cipher_for
from ..storage.db import one, parse_stamp, rows
from . import accounts, sessions
from .access import ALL_STAFF, require_site, second_factor_required, staff_route, visible_sites
from .auth import _account_key
from .blueprint import bp

DECIDERS = corrections.APPROVERS
STATUSES = ("requested", "approved", "rejected", "withdrawn")


def _l(text: str) -> str:
    """Mark a text for the catalogue (pybabel extracts _l); translated when said."""
    return text


TEXTS = {
    "value_missing": _l("Give the new value."),
    "value": _l("%(value)s is not an answer this question allows. Allowed: %(allowed)s."),
    "item": _l("This question is not shown with the current answers, so it cannot be corrected."),
    "same": _l("The new value is the same as the current answer."),
    "reason": _l("Give the reason for the correction."),
    "source": _l("Give the source of the new value, for example «participant phoned on 3 March»."),
    "note": _l("Give the reason for rejecting or withdrawing the request."),
    "reason_long": _l("The text may have at most %(max)s characters."),
    "source_long": _l("The text may have at most %(max)s characters."),
    "note_long": _l("The text may have at most %(max)s characters."),
    "decided": _l("This request is already decided (%(status)s)."),
    "same_person": _l(
        "You made this request. Another investigator or coordinator at the site must approve it."
    ),
    "password": _l("Type your password to approve the correction."),
    "stale": _l(
        "The response has changed since the request was made (it is now version %(version)s)."
        " Reject this request and make a new one."
    ),
    "definition": _l(
        "The questionnaire's definition has changed since these answers were given"
        " (%(stored)s, now %(current)s). Ask the data manager before correcting them."
    ),
    "name": _l("Write your full name as it is to appear on the signature."),
    "name_long": _l("The name may have at most 200 characters."),
    "meaning": _l("Choose what the signature means."),
    "nothing": _l("Nothing is submitted at this timepoint yet, so there is nothing to sign."),
    "wrong_password": _l("The password is wrong."),
    "wrong_code": _l("The code is wrong or already used. Type the next code the app shows."),
    "blocked": _l("Too many failed attempts. Wait 15 minutes and try again."),
}


class FormProblem(ValueError):
    """A problem with the form itself (the password or the code), said by its key."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(key)


def say(error: Exception) -> str:
    """The problems of a CorrectionError, SignError or FormProblem in the reader's language."""
    problems = getattr(error, "problems", None) or [(getattr(error, "key", ""), {})]
    said = []
    for key, values in problems:
        if key not in TEXTS:
            said.append(str(error))
            continue
        values = dict(values)
        if "allowed" in values:
            values["allowed"] = allowed_words(values["allowed"])
        if "status" in values:
            values["status"] = status_words()[values["status"]]
        said.append(_(TEXTS[key], **values))
    return " ".join(said)


def allowed_words(allowed: dict) -> str:
    parts = []
    if allowed["codes"]:
        codes = list(allowed["codes"])
        run = codes == list(range(min(codes), max(codes) + 1)) and len(codes) > 2
        parts.append(f"{min(codes)}–{max(codes)}" if run else ", ".join(map(str, codes)))
    if allowed["range"]:
        parts.append(f"{allowed['range'][0]}–{allowed['range'][1]}")
    if allowed["text"]:
        parts.append(_("text of up to %(max)s characters", max=allowed["text"]))
    if allowed["date"]:
        parts.append(_("a date as YYYY-MM-DD"))
    if allowed["declined"]:
        parts.append(DECLINED)
    if allowed["not_applicable"]:
        parts.append(NOT_APPLICABLE)
    return ", ".join(parts)


def status_words() -> dict:
    return {
        "requested": _("awaiting approval"),
        "approved": _("approved"),
        "rejected": _("rejected"),
        "withdrawn": _("withdrawn by the requester"),
    }


def source_words(source: str) -> str:
    return {"phone": _("participant's phone"), "paper": _("paper form")}.get(source, source)


def _language() -> str:
    return str(get_locale())


def answer_words(item, value) -> str:
    """An answer for staff: the code and its label, or what it stands for."""
    language = _language()
    if value is None:
        return _("no answer")
    if value == DECLINED:
        return _("declined (chose not to answer)")
    if value == NOT_APPLICABLE:
        return _("not applicable")
    if isinstance(item, SingleChoice | MultipleChoice):
        labels = {o.code: o.label.get(language) for o in item.options}
        codes = value if isinstance(value, list) else [value]
        return "; ".join(f"{c} – {labels.get(c, '?')}" for c in codes)
    if isinstance(item, YesNo):
        return f"{value} – {(item.yes if value == 1 else item.no).get(language)}"
    unit = getattr(item, "unit", None)
    return f"{value} {unit.get(language)}" if unit is not None else str(value)


def score_words(definition, name: str, value) -> str:
    """A stored score for staff: rounded as the definition says, bands by their label."""
    if value is None:
        return _("not computed")
    rule = next((r for r in definition.scores if r.id == name), None) if definition else None
    if isinstance(rule, BandsRule):
        band = next((b for b in rule.bands if b.value == value), None)
        return band.label.get(_language()) if band else str(value)
    if isinstance(value, bool) or isinstance(rule, CutoffRule):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        decimals = getattr(rule, "decimals", 2)
        return f"{value:.{decimals}f}"
    return str(value)


def local_time(text: str | None) -> str:
    """A stored UTC time as the study's local time, to the minute."""
    if not text:
        return "–"
    moment = parse_stamp(text).astimezone(current_catalog().study.zone)
    return moment.strftime("%Y-%m-%d %H:%M")


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


def meaning_words(meaning: str) -> str:
    return {"reviewed": _("Reviewed: I have reviewed these responses")}.get(meaning, meaning)


def questionnaire_title(qid: str) -> str:
    definition = current_catalog().questionnaires.get(qid)
    if definition is None:
        return qid
    return (definition.short_title or definition.title).get(_language())


def score_label(definition, name: str) -> str:
    rule = next((r for r in definition.scores if r.id == name), None) if definition else None
    return f"{rule.label.get(_language())} ({name})" if rule else name


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


# Change requests ----------------------------------------------------------------------


@bp.route("/participants/<code>/responses/<response_uuid>/change", methods=["GET", "POST"])
@staff_route(*corrections.REQUESTERS)
def change_new(code: str, response_uuid: str):
    """Ask for a correction of one answer: the new value, the reason and the source."""
    person = _participant(code)
    newest = _response(person, response_uuid)
    db = get_db()
    definition = current_catalog().questionnaires.get(newest["questionnaire"])
    if definition is None:
        abort(404)
    answers = current_answers(db, newest["id"])
    shown = visible_items(definition, answers)
    item_id = request.values.get("item", "")
    form = {"reason": "", "source": "", "value": None}
    error = None
    if request.method == "POST":
        form = {
            "reason": request.form.get("reason", "")[:2000],
            "source": request.form.get("source", "")[:2000],
            "value": request.form.getlist("value"),
        }
        try:
            request_id = corrections.request_change(
                db,
                definition,
                response_uuid=response_uuid,
                item_id=item_id,
                raw_value=form["value"],
                reason=form["reason"],
                source=form["source"],
                staff=g.staff,
                sites=visible_sites(g.staff, current_catalog().study),
            )
            flash(_("The change request is made. It must be approved before the answer changes."))
            return redirect(url_for("staff.change_detail", request_id=request_id), 303)
        except corrections.CorrectionError as exc:
            error = say(exc)
        except LookupError:
            abort(404)
    item = definition.items_by_id.get(item_id) if item_id in shown else None
    return render_template(
        "staff/change_new.html",
        person=person,
        newest=newest,
        definition=definition,
        answers=answers,
        shown=shown,
        item=item,
        form=form,
        error=error,
        mode=current_catalog().study.corrections.approval,
    ), (400 if error else 200)


@bp.get("/changes")
@staff_route(*ALL_STAFF)
def change_list():
    """Change requests at my sites, those awaiting a decision first."""
    status = request.args.get("status")
    status = status if status in STATUSES else None
    sites = visible_sites(g.staff, current_catalog().study)
    return render_template(
        "staff/changes.html",
        requests=corrections.listing(get_db(), sites=sites, status=status),
        status=status,
        statuses=STATUSES,
    )


def _request_or_404(request_id: int) -> dict:
    found = corrections.get(get_db(), request_id)
    if found is None or found["site"] not in visible_sites(g.staff, current_catalog().study):
        abort(404)
    return found


def _render_request(found: dict, error: str | None = None, status: int = 200):
    catalog = current_catalog()
    definition = catalog.questionnaires.get(found["questionnaire"])
    mode = catalog.study.corrections.approval
    newest = corrections.newest(get_db(), found["response_uuid"])
    return render_template(
        "staff/change.html",
        req=found,
        definition=definition,
        item=definition.items_by_id.get(found["item"]) if definition else None,
        newest=newest,
        mode=mode,
        can_approve=corrections.may_approve(g.staff, found, mode),
        can_decline=corrections.may_decline(g.staff, found),
        own=g.staff["email"].lower() == found["requested_by"].lower(),
        error=error,
    ), status


@bp.get("/changes/<int:request_id>")
@staff_route(*ALL_STAFF)
def change_detail(request_id: int):
    """One change request: the item, old and new value, why, the source, and its decision."""
    return _render_request(_request_or_404(request_id))


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


@bp.post("/changes/<int:request_id>/approve")
@staff_route(*DECIDERS)
def change_approve(request_id: int):
    """Approve: the next version of the response is made, scored and sent."""
    found = _request_or_404(request_id)
    db = get_db()
    catalog = current_catalog()
    mode = catalog.study.corrections.approval
    try:
        confirmed = False
        if mode == "password":
            _confirm_password(db)
            confirmed = True
        made = corrections.approve(
            db,
            catalog,
            request_id,
            staff=g.staff,
            sites=visible_sites(g.staff, catalog.study),
            mode=mode,
            password_confirmed=confirmed,
        )
    except (corrections.CorrectionError, FormProblem) as exc:
        return _render_request(corrections.get(db, request_id), say(exc), 400)
    flash(_("Approved. Version %(version)s of the response is made.", version=made["version"]))
    return redirect(
        url_for("staff.response_history", code=found["study_code"], response_uuid=made["uuid"]),
        303,
    )


@bp.post("/changes/<int:request_id>/reject")
@staff_route(*DECIDERS)
def change_reject(request_id: int):
    """Reject a request (or withdraw one's own) with a reason; nothing else changes."""
    _request_or_404(request_id)
    db = get_db()
    try:
        status = corrections.decline(
            db,
            request_id,
            note=request.form.get("note", "")[:2000],
            staff=g.staff,
            sites=visible_sites(g.staff, current_catalog().study),
        )
    except corrections.CorrectionError as exc:
        return _render_request(corrections.get(db, request_id), say(exc), 400)
    flash(_("The request is %(status)s.", status=status_words()[status]))
    return redirect(url_for("staff.change_detail", request_id=request_id), 303)


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
