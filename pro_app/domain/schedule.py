"""The schedule: (protocol, enrolment date, day 0) -> assessments with windows and states."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .protocol import Study, Timepoint

UTC = dt.UTC
STATES = ("upcoming", "open", "in_progress", "completed", "late", "missed")


class ScheduleError(ValueError):
    """Dates that cannot make a schedule (for example day 0 before enrolment)."""


@dataclass(frozen=True)
class Assessment:
    """One timepoint for one participant: target day and window, in days and in UTC."""

    timepoint: str
    questionnaires: tuple[str, ...]
    target: dt.date
    first_day: dt.date
    last_day: dt.date
    opens_at: dt.datetime
    closes_at: dt.datetime
    can_be_late: bool
    late_from: dt.datetime

    def window_state(self, now: dt.datetime) -> str:
        """Return 'upcoming', 'open' or 'closed' at an aware instant (server clock)."""
        now = _aware(now)
        if now < self.opens_at:
            return "upcoming"
        if now < self.closes_at:
            return "open"
        return "closed"

    def is_late(self, now: dt.datetime) -> bool:
        """True when the window is open and the target day is past."""
        now = _aware(now)
        return self.can_be_late and self.window_state(now) == "open" and now >= self.late_from

    def state(self, now: dt.datetime, *, completed: bool = False, started: bool = False) -> str:
        """Return one of STATES, given whether every questionnaire is in and anything saved."""
        if completed:
            return "completed"
        window = self.window_state(now)
        if window == "upcoming":
            return "upcoming"
        if window == "closed":
            return "missed"
        if self.is_late(now):
            return "late"
        return "in_progress" if started else "open"


def _aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ScheduleError("the time must carry a time zone (UTC is stored)")
    return now


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """Return 00:00 of a calendar day in the study's zone, as a UTC instant."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)


def _days(timepoint: Timepoint, study: Study, enrolled: dt.date, day0: dt.date | None):
    anchor = enrolled if timepoint.anchor == "enrolment" else day0
    target = anchor + dt.timedelta(days=timepoint.day)
    window = timepoint.window or study.windows
    first = target - dt.timedelta(days=window.before)
    last = target + dt.timedelta(days=window.after)
    if timepoint.ends_before_day0 and day0 is not None:
        last = day0 - dt.timedelta(days=1)
    return target, first, last


def build_schedule(
    study: Study, enrolled: dt.date, day0: dt.date | None = None
) -> tuple[Assessment, ...]:
    """Return the participant's assessments in protocol order.

    Timepoints anchored on day 0 are left out until day 0 is set.
    """
    if day0 is not None and day0 <= enrolled:
        raise ScheduleError(
            f"day 0 ({day0.isoformat()}) must be after the enrolment date "
            f"({enrolled.isoformat()}): screening happens before day 0"
        )
    zone = study.zone
    result = []
    for timepoint in study.timepoints:
        if timepoint.anchor == "day0" and day0 is None:
            continue
        target, first, last = _days(timepoint, study, enrolled, day0)
        result.append(
            Assessment(
                timepoint=timepoint.id,
                questionnaires=timepoint.questionnaires,
                target=target,
                first_day=first,
                last_day=last,
                opens_at=local_midnight(first, zone),
                closes_at=local_midnight(last + dt.timedelta(days=1), zone),
                can_be_late=timepoint.can_be_late,
                late_from=local_midnight(target + dt.timedelta(days=1), zone),
            )
        )
    return tuple(result)
