"""`flask db`, `participants`, `invite`, `audit` and `contacts`: data commands for scripts."""

from __future__ import annotations

import click
import segno
from flask import current_app
from flask.cli import with_appcontext

from ..database import get_db
from ..domain.schedule import ScheduleError
from ..services import assessments, invites, participants
from ..storage import audit as audit_log
from ..storage.contacts import ContactKeyError, cipher_for, new_key
from ..storage.db import utc_now
from ..storage.schema import upgrade
from ..study_state import StudyLocked, ensure_open
from .common import catalog_or_exit

DATE = click.DateTime(["%Y-%m-%d"])


@click.group("db")
def db_group():
    """Create or upgrade the database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade():
    """Apply pending migrations to PRO_DATABASE (safe to run again)."""
    applied = upgrade(get_db())
    path = current_app.config["DATABASE"]
    click.echo(f"Applied {', '.join(applied)} to {path}" if applied else f"{path} is up to date")


@click.group("participants")
def participants_group():
    """Enrol participants (until the coordinator pages exist, and for scripts)."""


@participants_group.command("add")
@click.argument("code")
@click.option("--site", required=True, help="Site id, e.g. OUS.")
@click.option("--enrolled", required=True, type=DATE, help="Enrolment date (YYYY-MM-DD).")
@click.option("--day0", type=DATE, help="Day 0 (YYYY-MM-DD), if known.")
@click.option("--language", type=click.Choice(["nb", "en"]), default="nb", show_default=True)
@click.option("--email", help="E-mail address (stored encrypted, apart from answers).")
@click.option("--phone", help="Mobile number (stored encrypted, apart from answers).")
@with_appcontext
def participants_add(code, site, enrolled, day0, language, email, phone):
    """Enrol participant CODE and print their schedule."""
    study = catalog_or_exit().study
    db = get_db()
    upgrade(db)
    _open_or_exit(db)
    try:
        cipher = cipher_for(current_app.config) if (email or phone) else None
        row = participants.add(
            db,
            study,
            code=code,
            site=site,
            enrolled=enrolled.date(),
            day0=day0.date() if day0 else None,
            language=language,
            email=email,
            phone=phone,
            cipher=cipher,
            actor="cli",
            role="admin",
        )
    except (participants.EnrolmentError, ContactKeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Enrolled {row['study_code']} at {row['site']} on {row['enrolled_on']}.")
    _print_schedule(db, study, row)


def _open_or_exit(db) -> None:
    """Stop with the reason when the study is locked (nothing may change)."""
    try:
        ensure_open(db)
    except StudyLocked as exc:
        raise click.ClickException(str(exc)) from exc


def _print_schedule(db, study, participant) -> None:
    now = utc_now()
    for a in assessments.for_participant(db, participant["id"]):
        state = assessments.state(db, a, study, now)
        click.echo(f"  {a['timepoint']:<10} {a['first_day']} - {a['last_day']}  {state}")
    if not participant["day0"]:
        click.echo("  Day 0 is not set: the other timepoints are scheduled when it is.")


@participants_group.command("day0")
@click.argument("code")
@click.argument("day0", type=DATE)
@with_appcontext
def participants_day0(code, day0):
    """Set day 0 for participant CODE (the first time) and print the schedule."""
    study = catalog_or_exit().study
    db = get_db()
    _open_or_exit(db)
    row = participants.by_code(db, code)
    if row is None:
        raise click.ClickException(f"no participant with study code '{code}'")
    try:
        participants.set_day0(db, study, row, day0.date())
    except (participants.EnrolmentError, ScheduleError) as exc:
        raise click.ClickException(str(exc)) from exc
    _print_schedule(db, study, participants.by_code(db, code))


@click.command("invite")
@click.argument("code")
@click.argument("timepoint")
@click.option("--revoke", is_flag=True, help="Revoke the live link instead of making one.")
@click.option("--reissue", is_flag=True, help="Make a new link; the old one dies at once.")
@click.option("--qr", type=click.Path(dir_okay=False), help="Also write the QR code as SVG here.")
@with_appcontext
def invite(code, timepoint, revoke, reissue, qr):
    """Print a new invite link for participant CODE at TIMEPOINT (and a terminal QR code).

    Only the link's hash is stored: the link is shown once. Making a link always replaces
    the earlier one (--reissue says so explicitly). The link works while the window is open.
    """
    if revoke and reissue:
        raise click.UsageError("use --revoke or --reissue, not both")
    db = get_db()
    _open_or_exit(db)
    participant = participants.by_code(db, code)
    if participant is None:
        raise click.ClickException(f"no participant with study code '{code}'")
    assessment = next(
        (
            a
            for a in assessments.for_participant(db, participant["id"])
            if a["timepoint"] == timepoint
        ),
        None,
    )
    if assessment is None:
        known = [a["timepoint"] for a in assessments.for_participant(db, participant["id"])]
        raise click.ClickException(
            f"{code} has no timepoint '{timepoint}' scheduled (scheduled: {', '.join(known)})"
        )
    if participant["status"] != "active":
        raise click.ClickException(f"{code} is {participant['status']}: no links can be made")
    if revoke:
        count = invites.revoke(db, assessment, participant, actor="cli", role="admin")
        click.echo(f"Revoked {count} link(s) for {code} at {timepoint}.")
        return
    if assessment["completed_at"]:
        raise click.ClickException(f"{code} has already completed {timepoint}")
    token = invites.issue(db, assessment, participant, actor="cli", role="admin")
    url = invites.link(current_app.config["BASE_URL"], token)
    click.echo(url)
    click.echo(f"Open from {assessment['first_day']} to {assessment['last_day']} (Oslo time).")
    code_image = segno.make(url, error="m")
    if qr:
        code_image.save(qr, kind="svg", scale=4, border=2)
        click.echo(f"QR code written to {qr}")
    else:
        code_image.terminal(compact=True)


@click.group("audit")
def audit_group():
    """Check the audit log."""


@audit_group.command("verify")
@with_appcontext
def audit_verify():
    """Walk the audit hash chain; name every row that was changed, removed or inserted."""
    count, problems = audit_log.verify(get_db())
    for problem in problems:
        click.echo(f"error {problem}", err=True)
    if problems:
        raise click.ClickException(f"the audit chain is broken ({len(problems)} problem(s))")
    click.echo(f"Audit chain intact: {count} rows.")


@click.group("contacts")
def contacts_group():
    """Contact-detail encryption."""


@contacts_group.command("new-key")
def contacts_new_key():
    """Print a new key for PRO_CONTACT_KEY (keep it apart from database backups)."""
    click.echo(new_key())
