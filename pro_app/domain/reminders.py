"""Which reminder step is due for an assessment now (pure; the command sends it)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def in_quiet_hours(moment: dt.time, start: dt.time, end: dt.time) -> bool:
    """True inside quiet hours; a span like 21:00-09:00 crosses midnight."""
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def due_step(
    days: tuple[int, ...],
    first_day: dt.date,
    closes_at: dt.datetime,
    now: dt.datetime,
    zone: ZoneInfo,
    quiet_start: dt.time,
    quiet_end: dt.time,
    sent_steps: set[int],
) -> int | None:
    """Return the reminder step (1-based) to send now, or None.

    Step n is due from local day first_day + days[n-1]. Only the latest due step is sent
    (a cron that was down does not send two at once), never one already sent or overtaken
    by a later one, never after the window closes and never in quiet hours.
    """
    if now >= closes_at:
        return None
    local = now.astimezone(zone)
    if in_quiet_hours(local.time(), quiet_start, quiet_end):
        return None
    due = [n for n, day in enumerate(days, 1) if local.date() >= first_day + dt.timedelta(days=day)]
    if not due:
        return None
    latest = max(due)
    if any(step >= latest for step in sent_steps):
        return None
    return latest
