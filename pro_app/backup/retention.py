"""Which backups to keep: the newest of each day, ISO week and month, up to a count of each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

RULES: tuple[tuple[str, Callable[[dt.datetime], tuple]], ...] = (
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: tuple(t.isocalendar())[:2]),
    ("monthly", lambda t: (t.year, t.month)),
)


@dataclass(frozen=True)
class Plan:
    keep: dict[dt.datetime, tuple[str, ...]]  # each kept time and the rules that keep it
    delete: tuple[dt.datetime, ...]


def plan(
    times: Iterable[dt.datetime], *, daily: int = 14, weekly: int = 8, monthly: int = 12
) -> Plan:
    """Decide which backup times to keep (pure; days, weeks and months are UTC).

    Walking from the newest, each rule keeps the newest backup of each period it has not
    seen yet, until it has kept `count` periods. The newest backup is always kept.
    """
    counts = {"daily": daily, "weekly": weekly, "monthly": monthly}
    if any(count < 0 for count in counts.values()):
        raise ValueError("retention counts cannot be negative")
    ordered = sorted({t.astimezone(dt.UTC) for t in times}, reverse=True)
    reasons: dict[dt.datetime, list[str]] = {t: [] for t in ordered}
    if ordered:
        reasons[ordered[0]].append("newest")
    for rule, period in RULES:
        seen: set[tuple] = set()
        for moment in ordered:
            if len(seen) >= counts[rule]:
                break
            key = period(moment)
            if key not in seen:
                seen.add(key)
                reasons[moment].append(rule)
    keep = {t: tuple(r) for t, r in reasons.items() if r}
    delete = tuple(sorted(t for t in ordered if t not in keep))
    return Plan(keep=keep, delete=delete)
