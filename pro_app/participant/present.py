"""How answers and dates read on the participant's pages."""

from __future__ import annotations

import datetime as dt

from flask_babel import format_date
from flask_babel import gettext as _

from ..domain.answers import DECLINED, NOT_APPLICABLE
from ..domain.model import Date, Integer, MultipleChoice, SingleChoice, YesNo


def long_date(day: dt.date | str) -> str:
    """'3. mars 2026' / 'March 3, 2026'."""
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return format_date(day, format="long")


def answer_text(item, value, language: str) -> str:
    """The answer as the participant chose it, in words."""
    if value is None:
        return _("Not answered")
    if value == DECLINED:
        return _("You chose not to answer")
    if value == NOT_APPLICABLE:
        return item.not_applicable.get(language)
    if isinstance(item, SingleChoice):
        return next(o.label.get(language) for o in item.options if o.code == value)
    if isinstance(item, MultipleChoice):
        labels = [o.label.get(language) for o in item.options if o.code in value]
        return ", ".join(labels)
    if isinstance(item, YesNo):
        return (item.yes if value == 1 else item.no).get(language)
    if isinstance(item, Integer) and item.unit is not None:
        return f"{value} {item.unit.get(language)}"
    if isinstance(item, Date):
        return long_date(value)
    return str(value)
