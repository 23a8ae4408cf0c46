"""`flask reminders send`: send the reminders that are due (safe to run from cron)."""

from __future__ import annotations

import datetime as dt
import fcntl
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..domain.reminders import due_step
from ..notify.send import NO_CONTACT, deliver
from ..startup import refuse_unsafe
from ..storage.contacts import cipher_for
from ..storage.db import one, parse_stamp, utc_now
from ..study_state import StudyLocked, ensure_open
from .common import catalog_or_exit, upgraded_db
from .schedule import _Moment


@click.group("reminders")
def reminders_group():
    """Reminders for open, unfinished assessments."""


@reminders_group.command("send")
@click.option("--now", type=_Moment(), help="Pretend it is this moment (ISO; no offset = Oslo).")
@click.option("--dry-run", is_flag=True, help="Say what would be sent; send nothing.")
@with_appcontext
def send(now, dry_run):
    """Send each due reminder once: by e-mail and SMS where the participant has them.

    For every open, unfinished assessment of an active participant, the study's reminder
    days (counted from the day the window opens) decide the step. Never outside the
    window, never in quiet hours, never the same step twice; one run at a time.
    """
    study = catalog_or_exit().study
    if not dry_run:
        refuse_unsafe(current_app)  # links in messages must carry the real base URL
    try:
        ensure_open(upgraded_db())
    except StudyLocked as exc:
        # Not an error for cron (which mails every failure): there is nothing to send.
        click.echo(f"No reminders are sent: {exc}")
        return
    zone = study.zone
    now = (now.replace(tzinfo=zone) if now and now.tzinfo is None else now) or utc_now()
    now = now.astimezone(dt.UTC)
    lock_path = Path(current_app.config["DATABASE"] + ".reminders.lock")
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise click.ClickException("another 'reminders send' is running") from exc
        count = _run(study, now, dry_run)
    click.echo(f"{'Would send' if dry_run else 'Sent'} {count} reminder(s).")


def _run(study, now, dry_run) -> int:
    db = upgraded_db()
    cipher = cipher_for(current_app.config)
    quiet = study.reminders.quiet_hours
    count = 0
    rows = db.query(
        "SELECT a.*, p.study_code, p.site, p.language, p.status AS participant_status"
        " FROM assessments a JOIN participants p ON p.id = a.participant_id"
        " WHERE a.completed_at IS NULL AND p.status = 'active' AND a.opens_at <= ?"
        " AND a.closes_at > ? ORDER BY a.id",
        [now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")] * 2,
    )
    for row in list(rows):
        timepoint = study.timepoint(row["timepoint"])
        days = (
            timepoint.reminder_days
            if timepoint.reminder_days is not None
            else (study.reminders.after_days)
        )
        sent = {
            r["step"]
            for r in db.query(
                "SELECT step FROM deliveries WHERE assessment_id = ? AND kind = 'reminder'"
                " AND status = 'sent'",
                [row["id"]],
            )
        }
        step = due_step(
            tuple(days),
            dt.date.fromisoformat(row["first_day"]),
            parse_stamp(row["closes_at"]),
            now,
            study.zone,
            quiet.start,
            quiet.end,
            sent,
        )
        if step is None:
            continue
        label = f"{row['study_code']} {row['timepoint']} reminder {step}"
        if dry_run:
            click.echo(f"would send {label}")
            count += 1
            continue
        participant = one(db, "SELECT * FROM participants WHERE id = ?", [row["participant_id"]])
        assessment = one(db, "SELECT * FROM assessments WHERE id = ?", [row["id"]])
        outcome = deliver(
            db,
            current_app.config,
            study,
            cipher,
            participant=participant,
            assessment=assessment,
            channels=("email", "sms"),
            kind="reminder",
            step=step,
            actor="reminders",
            role="system",
        )
        for channel, error in outcome.items():
            if error == NO_CONTACT:
                continue  # the participant has no address for this channel
            click.echo(f"{label} {channel}: {'sent' if error is None else 'FAILED: ' + error}")
            count += error is None
    return count
