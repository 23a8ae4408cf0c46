"""Change requests: ask for a correction of a submitted answer, list them, approve or reject.

Who may do what: docs/decisions/0026-corrections-and-sign-off.md.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..database import get_db
from ..domain.paths import visible_items
from ..services import corrections
from ..services.journal import current_answers
from .access import ALL_STAFF, staff_route, visible_sites
from .blueprint import bp
from .review import _confirm_password, _participant, _response
from .review_words import FormProblem, say, status_words

DECIDERS = corrections.APPROVERS
STATUSES = ("requested", "approved", "rejected", "withdrawn")


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
