"""`flask contacts purge`: delete contact details once the protocol's retention time is over.

The rule is the study's `retention.contact_days_after_follow_up`: a participant's e-mail
address and mobile number are deleted that many days after their follow-up ended, which is
when the last timepoint's window closed or, for a withdrawn participant, the withdrawal.
Answers, responses and scores are never touched: the command checks that itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import click
from flask.cli import with_appcontext

from ..staff.accounts import by_email
from ..storage import audit
from ..storage.db import one, parse_stamp, rows, utc_now, write
from .common import catalog_or_exit, upgraded_db
from .data import contacts_group

# The tables a purge must leave exactly as they were.
KEPT = ("responses", "answers", "scores")


@dataclass(frozen=True)
class Verdict:
    """Whether a participant's contact details may go now, and why."""

    code: str
    purge: bool
    why: str


def follow_up_end(participant: dict, closes: list[str], timepoints: int, withdrawn_at):
    """When follow-up ended (aware UTC), or None when it has not got an end yet.

    A withdrawn participant's follow-up ended at the withdrawal (contact stopped then);
    otherwise it ends when the last window closes, once every timepoint is scheduled.
    """
    if participant["status"] == "withdrawn" and withdrawn_at is not None:
        return withdrawn_at
    if len(closes) < timepoints or not closes:
        return None  # day 0 is not set: the later timepoints are not scheduled
    return max(parse_stamp(c) for c in closes)


def decide(participant: dict, ended, days: int, now: dt.datetime, zone) -> Verdict:
    """The retention rule: purge when `days` days have passed since follow-up ended.

    Days are shown as calendar days in the study's time zone.
    """
    code = participant["study_code"]
    if ended is None:
        return Verdict(code, False, "follow-up has no end yet (day 0 is not set)")
    due = ended + dt.timedelta(days=days)
    if participant["status"] == "withdrawn":
        what = "withdrawn"
    else:
        what = "follow-up ended" if ended <= now else "follow-up ends"
    day, due_day = ended.astimezone(zone).date(), due.astimezone(zone).date()
    when = f"{what} {day.isoformat()}; may be deleted from {due_day.isoformat()}"
    return Verdict(code, now >= due, when)


def fingerprint(db) -> dict:
    """Row counts and one SHA-256 over every row of responses, answers and scores."""
    digest = hashlib.sha256()
    counts = {}
    for table in KEPT:
        cursor = db.conn.execute(f"SELECT * FROM {table} ORDER BY id")  # names from KEPT, not input
        counts[table] = 0
        digest.update(f"{table}\n".encode())
        while batch := cursor.fetchmany(5000):
            counts[table] += len(batch)
            digest.update("".join(f"{row!r}\n" for row in batch).encode())
    return {**counts, "sha256": digest.hexdigest()}


def _candidates(db, codes: tuple[str, ...]) -> list[dict]:
    found = rows(
        db,
        "SELECT p.*, c.email IS NOT NULL AS has_email, c.phone IS NOT NULL AS has_phone"
        " FROM participants p JOIN contacts c ON c.participant_id = p.id ORDER BY p.study_code",
    )
    if codes:
        found = [p for p in found if p["study_code"] in codes]
    return found


def _verdicts(db, study, people: list[dict], now) -> list[Verdict]:
    days = study.retention.contact_days_after_follow_up
    verdicts = []
    for person in people:
        closes = [
            r["closes_at"]
            for r in rows(
                db, "SELECT closes_at FROM assessments WHERE participant_id = ?", [person["id"]]
            )
        ]
        withdrawn = one(
            db,
            "SELECT at FROM audit WHERE action = 'participant.withdraw' AND entity_id = ?"
            " ORDER BY id DESC LIMIT 1",
            [person["study_code"]],
        )
        ended = follow_up_end(
            person,
            closes,
            len(study.timepoints),
            parse_stamp(withdrawn["at"]) if withdrawn else None,
        )
        verdicts.append(decide(person, ended, days, now, study.zone))
    return verdicts


def _show(counts: dict, label: str) -> None:
    click.echo(
        f"{label}: {counts['responses']} responses, {counts['answers']} answers,"
        f" {counts['scores']} scores; SHA-256 {counts['sha256']}"
    )


@contacts_group.command("purge")
@click.option("--by", "by", required=True, metavar="EMAIL", help="The admin doing the purge.")
@click.option("--dry-run", is_flag=True, help="Say whose details would be deleted; delete nothing.")
@click.option(
    "--participant",
    "codes",
    multiple=True,
    metavar="CODE",
    help="Only this participant (repeatable).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Delete the named participants' details now, whatever the rule says (needs --reason).",
)
@click.option("--reason", help="Why the rule is overridden (with --force).")
@with_appcontext
def purge(by, dry_run, codes, force, reason):
    """Delete contact details (e-mail, mobile) once the retention time has passed.

    The study's retention.contact_days_after_follow_up counts days from the end of a
    participant's follow-up: when their last timepoint's window closed, or when they were
    withdrawn. Each deletion is audited (never the details themselves). Responses, answers
    and scores are counted and hashed before and after, and must be unchanged.
    """
    study = catalog_or_exit().study
    db = upgraded_db()
    staff = by_email(db, by)
    if staff is None or staff["role"] != "admin" or staff["disabled_at"]:
        raise click.ClickException(f"{by} is not an active admin account: only an admin may purge")
    if force and not codes:
        raise click.UsageError("--force needs the participants it applies to: --participant CODE")
    if force and not (reason or "").strip():
        raise click.UsageError("--force needs a reason: --reason TEXT (kept in the audit log)")
    known = {r["study_code"] for r in rows(db, "SELECT study_code FROM participants")}
    unknown = sorted(set(codes) - known)
    if unknown:
        raise click.ClickException(f"no participant with study code {', '.join(unknown)}")
    people = _candidates(db, codes)
    for code in sorted(set(codes) - {p["study_code"] for p in people}):
        click.echo(f"{code}  no contact details stored")
    verdicts = _verdicts(db, study, people, utc_now())
    chosen = [v for v in verdicts if v.purge or force]
    for verdict in verdicts:
        if force:
            action = "would purge (forced)" if dry_run else "purge (forced)"
        elif verdict.purge:
            action = "would purge" if dry_run else "purge"
        else:
            action = "keep"
        click.echo(f"{verdict.code}  {action}  ({verdict.why})")
    if dry_run or not chosen:
        click.echo(
            f"{'Would delete' if dry_run else 'Deleted'} contact details of {len(chosen)}"
            " participant(s)."
        )
        return
    by_code = {p["study_code"]: p for p in people}
    with write(db):
        before = fingerprint(db)
        for verdict in chosen:
            person = by_code[verdict.code]
            db.execute("DELETE FROM contacts WHERE participant_id = ?", [person["id"]])
            audit.record(
                db,
                actor=staff["email"],
                role=staff["role"],
                action="contacts.purge",
                entity="participant",
                entity_id=verdict.code,
                field="contacts",
                old={"email": bool(person["has_email"]), "phone": bool(person["has_phone"])},
                new=None,
                reason=(
                    f"forced: {reason.strip()}"
                    if force
                    else f"retention {study.retention.contact_days_after_follow_up} days:"
                    f" {verdict.why}"
                ),
            )
        after = fingerprint(db)
        if after != before:  # cannot happen: the transaction only deletes contacts rows
            raise click.ClickException("answers changed during the purge: nothing was deleted")
        audit.record(
            db,
            actor=staff["email"],
            role=staff["role"],
            action="contacts.purge.check",
            entity="contacts",
            new={"participants": len(chosen), **after},
            reason="responses, answers and scores unchanged by the purge",
        )
    _show(before, "Before")
    _show(after, "After ")
    click.echo("Answers untouched: responses, answers and scores are identical.")
    click.echo(f"Deleted contact details of {len(chosen)} participant(s).")
