"""Read a page's form post into answers and errors, against the definition (no database)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask_babel import gettext as _

from ..domain.answers import DECLINED, NOT_APPLICABLE, check_value
from ..domain.model import Date, Integer, MultipleChoice, Text


@dataclass
class PageInput:
    """The values to save, the errors to show, and skips waiting for confirmation."""

    values: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    confirm: set = field(default_factory=set)


def _raw(form, item):
    if isinstance(item, MultipleChoice):
        chosen = form.getlist(item.id)
        return chosen or None
    text = form.get(item.id, "")
    text = text.strip() if isinstance(text, str) else ""
    return text or None


def _convert(item, raw):
    """Turn form text into an answer value; return (value, error)."""
    if raw in (NOT_APPLICABLE,) and item.not_applicable is not None:
        return NOT_APPLICABLE, None
    if isinstance(item, Text):
        return raw, None
    if isinstance(item, Date):
        return _date_text(raw), None
    if isinstance(item, MultipleChoice):
        try:
            return [int(v) for v in raw], None
        except ValueError:
            return None, _("Choose from the list.")
    try:
        number = int(raw.replace(" ", "").replace("\u00a0", ""))
    except ValueError:
        if isinstance(item, Integer):
            return None, _(
                "Write a whole number from %(low)s to %(high)s.", low=item.min, high=item.max
            )
        return None, _("Choose one of the answers.")
    return number, None


def _date_text(raw: str) -> str:
    """Accept ISO dates (the date picker) and Norwegian 3.3.2026 typed by hand."""
    parts = raw.replace("/", ".").split(".")
    if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
        day, month, year = (int(p) for p in parts)
        try:
            return dt.date(year, month, day).isoformat()
        except ValueError:
            return raw
    return raw


def _message(item, problem: str) -> str:
    if isinstance(item, Integer):
        return _("Write a whole number from %(low)s to %(high)s.", low=item.min, high=item.max)
    if isinstance(item, Date):
        if "future" in problem:
            return _("The date cannot be in the future.")
        return _("Write a date, for example 3.3.2026.")
    if isinstance(item, Text):
        return _(
            "The answer is too long: write at most %(count)s characters.", count=item.max_length
        )
    return _("Choose one of the answers.")


def read_page(form, items, current: dict, today) -> PageInput:
    """Read the shown items of one page; blank required items and unconfirmed skips are errors."""
    result = PageInput()
    confirmed = set(form.getlist("confirm_skip"))
    for item in items:
        raw = _raw(form, item)
        if raw is None:
            if item.skippable and item.id in confirmed:
                result.values[item.id] = DECLINED
            elif item.skippable and current.get(item.id) == DECLINED:
                result.values[item.id] = DECLINED
            elif item.skippable:
                result.confirm.add(item.id)
            else:
                result.errors[item.id] = _("You must answer this question.")
            continue
        value, error = _convert(item, raw)
        if error is None:
            value, problem = check_value(item, value, strict=True, today=today)
            error = _message(item, problem) if problem else None
        if error:
            result.errors[item.id] = error
        else:
            result.values[item.id] = value
    return result
