"""Staff pages: the completion overview, a participant's page, enrolment, links."""

from __future__ import annotations

import datetime as dt

import segno
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..database import get_db
from ..notify.send import deliver
from ..services import alerts as alert_service
from ..services import assessments, invites, participants
from ..services import overview as overview_service
from ..storage.contacts import ContactKeyError, cipher_for, load
from ..storage.db import one, rows, utc_now
from .access import ALL_STAFF, require_site, staff_route, visible_sites
from .blueprint import bp
from .messages import say

MANAGE = ("admin", "coordinator")


class FormProblem(ValueError):
    """A form value the page itself refuses (the message is already translated)."""


@bp.get("/")
@staff_route(*ALL_STAFF)
def overview():
    """Who is due, late or missed: participants × timepoints, with counts."""
    study = current_catalog().study
    sites = visible_sites(g.staff, study)
    chosen = request.args.get("site")
    if chosen in sites:
        sites = (chosen,)
    state = request.args.get("state") or None
    data = overview_service.matrix(get_db(), study, sites, utc_now())
    if state:
        data["rows"] = [
            r for r in data["rows"] if any(c["state"] == state for c in r["cells"].values())
        ]
    today = utc_now().astimezone(study.zone).date()
    week = (today + dt.timedelta(days=7)).isoformat()
    due = sorted(
        (cell["last_day"], r["participant"]["study_code"], timepoint, cell["state"])
        for r in data["rows"]
        for timepoint, cell in r["cells"].items()
        if cell["state"] in ("open", "in_progress", "late") and cell["last_day"] <= week
    )
    alerts = [] if g.staff["role"] == "data_manager" else alert_service.open_alerts(get_db(), sites)
    return render_template(
        "staff/overview.html",
        data=data,
        study=study,
        site=chosen,
        state=state,
        sites=visible_sites(g.staff, study),
        due=due,
        alerts=alerts,
    )


def _participant_or_404(code: str) -> dict:
    row = participants.by_code(get_db(), code)
    if row is None:
        abort(404)
    require_site(g.staff, current_catalog().study, row["site"])
    g.study_code = row["study_code"]  # pseudonymous; for the log line (pro_app/logs.py)
    return row


def _assessment(db, row: dict, timepoint: str) -> dict | None:
    return one(
        db,
        "SELECT * FROM assessments WHERE participant_id = ? AND timepoint = ?",
        [row["id"], timepoint],
    )


@bp.get("/participants/<code>")
@staff_route("admin", "coordinator", "investigator", "data_manager")
def participant(code: str):
    """A participant's schedule, windows, states, links; contact details for site staff."""
    study = current_catalog().study
    row = _participant_or_404(code)
    db = get_db()
    now = utc_now()
    schedule = []
    for a in assessments.for_participant(db, row["id"]):
        history = list(
            db.query(
                "SELECT created_at, created_by, revoked_at, first_used_at FROM invites"
                " WHERE assessment_id = ? ORDER BY id",
                [a["id"]],
            )
        )
        schedule.append(
            {
                "row": a,
                "state": assessments.state(db, a, study, now),
                "label": study.timepoint(a["timepoint"]).label.get("en"),
                "invites": history,
            }
        )
    contact = None
    if g.staff["role"] in MANAGE + ("investigator",):
        try:
            contact = load(db, row["id"], cipher_for(current_app.config))
        except ContactKeyError:
            contact = {"email": None, "phone": None, "error": True}
    audit_rows = rows(
        db,
        "SELECT at, actor, role, action, field, reason FROM audit WHERE entity_id = ?"
        " OR entity_id LIKE ? ORDER BY id DESC LIMIT 200",
        [code, f"{code}/%"],
    )
    return render_template(
        "staff/participant.html",
        person=row,
        schedule=schedule,
        contact=contact,
        can_manage=g.staff["role"] in MANAGE,
        history=audit_rows,
    )


@bp.post("/participants/<code>/<timepoint>/link")
@staff_route(*MANAGE)
def new_link(code: str, timepoint: str):
    """Make a new link (the old one dies at once) and show it once, with its QR code."""
    row = _participant_or_404(code)
    db = get_db()
    assessment = _assessment(db, row, timepoint)
    if assessment is None or assessment["completed_at"] or row["status"] != "active":
        return redirect(url_for("staff.participant", code=code))
    token = invites.issue(db, assessment, row, actor=g.staff["email"], role=g.staff["role"])
    url = invites.link(current_app.config["BASE_URL"], token)
    qr = segno.make(url, error="m").svg_data_uri(scale=4)
    return render_template("staff/link.html", person=row, timepoint=timepoint, url=url, qr=qr)


@bp.post("/participants/<code>/<timepoint>/revoke")
@staff_route(*MANAGE)
def revoke_link(code: str, timepoint: str):
    """Revoke the live link of a timepoint."""
    row = _participant_or_404(code)
    db = get_db()
    assessment = _assessment(db, row, timepoint)
    if assessment is not None:
        invites.revoke(db, assessment, row, actor=g.staff["email"], role=g.staff["role"])
    return redirect(url_for("staff.participant", code=code))


@bp.route("/participants/new", methods=["GET", "POST"])
@staff_route(*MANAGE)
def enrol():
    """Enrol a participant: study code, site, language, dates and contact details."""
    study = current_catalog().study
    sites = visible_sites(g.staff, study)
    form = {
        "code": "",
        "site": sites[0] if len(sites) == 1 else "",
        "language": "nb",
        "enrolled": utc_now().astimezone(study.zone).date().isoformat(),
        "day0": "",
        "email": "",
        "phone": "",
    }
    error = None
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip()[:200] for k in form}
        try:
            if form["site"] not in sites:
                raise FormProblem(_("Choose one of your sites."))
            enrolled = _date(form["enrolled"], _("enrolment date"))
            day0 = _date(form["day0"], _("day 0")) if form["day0"] else None
            cipher = cipher_for(current_app.config) if (form["email"] or form["phone"]) else None
            participants.add(
                get_db(),
                study,
                code=form["code"],
                site=form["site"],
                enrolled=enrolled,
                day0=day0,
                language=form["language"],
                email=form["email"] or None,
                phone=form["phone"] or None,
                cipher=cipher,
                actor=g.staff["email"],
                role=g.staff["role"],
            )
            return redirect(url_for("staff.participant", code=form["code"]))
        except (participants.EnrolmentError, ContactKeyError, FormProblem) as exc:
            error = say(exc)
    return render_template(
        "staff/enrol.html", form=form, sites=sites, error=error, pattern=study.code_pattern
    ), (400 if error else 200)


def _date(text: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise FormProblem(_("Write the %(name)s as YYYY-MM-DD.", name=name)) from exc


@bp.app_context_processor
def _state_words():
    names = {
        "upcoming": _("upcoming"),
        "open": _("open"),
        "in_progress": _("in progress"),
        "completed": _("completed"),
        "late": _("late"),
        "missed": _("missed"),
    }
    # Symbols as well as colour, so the matrix reads in grey-scale and for colour-blind eyes.
    short = {
        "upcoming": "·",
        "open": "○",
        "in_progress": "◐",
        "completed": "✓",
        "late": "!",
        "missed": "✗",
    }
    statuses = {"active": _("active"), "withdrawn": _("withdrawn"), "completed": _("completed")}
    return {"state_names": names, "state_short": short, "status_names": statuses}


@bp.post("/participants/<code>/<timepoint>/send")
@staff_route(*MANAGE)
def send_link(code: str, timepoint: str):
    """Send a new link by e-mail or SMS (the old link dies); say plainly if it failed."""
    row = _participant_or_404(code)
    channel = request.form.get("channel")
    if channel not in ("email", "sms"):
        abort(400)
    db = get_db()
    assessment = _assessment(db, row, timepoint)
    if assessment is None or assessment["completed_at"] or row["status"] != "active":
        flash(_("No link can be sent for this timepoint."), "error")
        return redirect(url_for("staff.participant", code=code))
    outcome = deliver(
        db,
        current_app.config,
        current_catalog().study,
        cipher_for(current_app.config),
        participant=row,
        assessment=assessment,
        channels=(channel,),
        actor=g.staff["email"],
        role=g.staff["role"],
    )
    error = outcome[channel]
    if error:
        flash(_("Not sent: %(error)s", error=error), "error")
    else:
        flash(_("Sent by %(channel)s.", channel=_("e-mail") if channel == "email" else "SMS"))
    return redirect(url_for("staff.participant", code=code))


@bp.post("/participants/<code>/withdraw")
@staff_route(*MANAGE)
def withdraw(code: str):
    """Withdraw the participant with a reason: links die and reminders stop at once."""
    row = _participant_or_404(code)
    try:
        participants.withdraw(
            get_db(),
            row,
            reason=request.form.get("reason", "")[:500],
            actor=g.staff["email"],
            role=g.staff["role"],
        )
        flash(_("%(code)s is withdrawn from the study.", code=code))
    except (participants.EnrolmentError, FormProblem) as exc:
        flash(say(exc), "error")
    return redirect(url_for("staff.participant", code=code))


@bp.get("/alerts")
@staff_route("admin", "coordinator", "investigator")
def alerts():
    """Open safety alerts at my sites."""
    study = current_catalog().study
    rows = alert_service.open_alerts(get_db(), visible_sites(g.staff, study))
    return render_template("staff/alerts.html", rows=rows)


@bp.post("/alerts/<int:alert_id>/acknowledge")
@staff_route("admin", "coordinator", "investigator")
def acknowledge(alert_id: int):
    """Acknowledge an alert with a note of what was done."""
    study = current_catalog().study
    try:
        alert_service.acknowledge(
            get_db(),
            alert_id,
            note=request.form.get("note", ""),
            staff=g.staff,
            sites=visible_sites(g.staff, study),
        )
        flash(_("The safety alert is acknowledged."))
    except LookupError:
        abort(404)
    except ValueError:
        flash(_("Write a note: what was done."), "error")
    return redirect(url_for("staff.alerts"))


@bp.app_context_processor
def _alert_text():
    def alert_text(row) -> str:
        definition = current_catalog().questionnaires.get(row["questionnaire"])
        alert = (
            next((a for a in definition.alerts if a.id == row["alert"]), None)
            if (definition)
            else None
        )
        return alert.message.get(str(get_locale())) if alert else row["alert"]

    return {"alert_text": alert_text}


@bp.post("/participants/<code>/day0")
@staff_route(*MANAGE)
def day0(code: str):
    """Set day 0, or correct it with a reason while no later timepoint has answers."""
    row = _participant_or_404(code)
    study = current_catalog().study
    try:
        when = _date(request.form.get("day0", "").strip(), _("day 0"))
        if row["day0"]:
            participants.correct_day0(
                get_db(),
                study,
                row,
                when,
                reason=request.form.get("reason", "")[:500],
                actor=g.staff["email"],
                role=g.staff["role"],
            )
        else:
            participants.set_day0(
                get_db(), study, row, when, actor=g.staff["email"], role=g.staff["role"]
            )
        flash(_("Day 0 is %(day)s.", day=when.isoformat()))
    except (participants.EnrolmentError, FormProblem) as exc:
        flash(say(exc), "error")
    return redirect(url_for("staff.participant", code=code))
