"""`flask schedule`: print a participant's schedule of timepoints and windows."""

from __future__ import annotations

import datetime as dt
import json

import click
from flask.cli import with_appcontext

from ..domain.schedule import ScheduleError, build_schedule
from .common import catalog_or_exit


class _Moment(click.ParamType):
    """An ISO date-time; without an offset it is read as the study's local time."""

    name = "DATETIME"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.datetime):
            return value
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            self.fail(
                f"{value!r} is not a date-time; write e.g. 2026-03-01T14:30 "
                "(Oslo time) or 2026-03-01T13:30Z (UTC)",
                param,
                ctx,
            )


def _row_state(assessment, now) -> str:
    state = assessment.window_state(now)
    if state == "open" and assessment.is_late(now):
        return "open, past target day"
    return state


@click.command("schedule")
@click.option(
    "--enrolled",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Enrolment date (YYYY-MM-DD); screening is anchored on it.",
)
@click.option(
    "--day0",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Day 0 (YYYY-MM-DD), the first infusion; the other timepoints hang on it.",
)
@click.option(
    "--now",
    type=_Moment(),
    help="The moment to show states for (ISO; no offset = Oslo time). Default: now.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_appcontext
def schedule(enrolled, day0, now, as_json):
    """Print a participant's schedule: each timepoint's target day, window and state.

    Windows are whole calendar days in the study's time zone (Europe/Oslo): open from
    00:00 on the first day, closed from 00:00 after the last day. State is the window's
    state at --now: upcoming, open (and whether the target day is past) or closed.
    """
    study = catalog_or_exit().study
    zone = study.zone
    if now is None:
        now = dt.datetime.now(dt.UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=zone)
    now = now.astimezone(dt.UTC)
    try:
        rows = build_schedule(study, enrolled.date(), day0.date() if day0 else None)
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([_as_dict(a, now) for a in rows], indent=2))
        return
    local_now = now.astimezone(zone)
    click.echo(
        f"Study {study.id} ({study.timezone}); enrolled {enrolled.date()}; "
        f"day 0 {day0.date() if day0 else 'not set'}; now {local_now:%Y-%m-%d %H:%M}"
    )
    header = ("Timepoint", "Day", "Target", "Opens", "Last day", "Questionnaires", "State")
    table = [header]
    for a in rows:
        tp = study.timepoint(a.timepoint)
        day = f"{tp.day:+d}" if tp.anchor == "day0" else "enrol"
        table.append(
            (
                a.timepoint,
                day,
                str(a.target),
                str(a.first_day),
                str(a.last_day),
                ", ".join(a.questionnaires),
                _row_state(a, now),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if day0 is None:
        click.echo("Day 0 is not set: the timepoints anchored on day 0 appear once it is.")
    elif study.visits:
        visits = ", ".join(
            f"{v.label.en} {day0.date() + dt.timedelta(days=v.day)}" for v in study.visits
        )
        click.echo(f"Visits: {visits}")


def _as_dict(a, now) -> dict:
    return {
        "timepoint": a.timepoint,
        "questionnaires": list(a.questionnaires),
        "target": a.target.isoformat(),
        "first_day": a.first_day.isoformat(),
        "last_day": a.last_day.isoformat(),
        "opens_at": a.opens_at.isoformat().replace("+00:00", "Z"),
        "closes_at": a.closes_at.isoformat().replace("+00:00", "Z"),
        "state": a.window_state(now),
        "past_target": a.is_late(now),
    }
