"""Read a whole paper form (or the items where two entries differ) from a staff post.

The phone reads one page at a time with participant/forms.py `read_page`; a paper form is
entered on one page, so it is read with the same function in two passes: first every item,
to learn which questions the answers put on the path, then only those (a question whose
condition does not hold is not asked, and an answer written there is not kept). Needs an
app context for the messages (flask_babel), no request and no database.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from flask_babel import gettext as _

from ..domain.paths import visible_items
from ..participant.forms import read_page
from .compare import FILLED_ON
from .layout import paper_form

DECLINE_FIELD = "confirm_skip"  # the phone's field for a confirmed skip: «declined»


@dataclass
class FormInput:
    """The answers to keep, the errors to show, and questions answered but not asked."""

    values: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    ignored: tuple = ()


def _given(form, item) -> bool:
    """True when the post has something for the item (blank text does not count)."""
    return any(str(v).strip() for v in form.getlist(item.id))


def read_items(form, definition, item_ids, base: dict, today) -> FormInput:
    """Read item_ids from form; base holds the answers already agreed (kept as they are).

    Items on the path (given base and what was read) must have an answer, or the declined
    box ticked where the item may be skipped; both at once is an error.
    """
    items = [definition.item(i) for i in item_ids]
    declined = set(form.getlist(DECLINE_FIELD))
    first = read_page(form, items, {}, today)
    shown = set(visible_items(definition, {**base, **first.values}))
    asked = [i for i in items if i.id in shown]
    second = read_page(form, asked, {}, today)
    result = FormInput(errors=dict(second.errors))
    for item in asked:
        if item.id in second.confirm:
            result.errors[item.id] = _(
                "No answer: write the answer from the form, or tick «Declined» if the "
                "participant ticked «I do not want to answer»."
            )
        elif item.id in declined and _given(form, item) and item.id not in result.errors:
            result.errors[item.id] = _("Either an answer or «Declined», not both.")
    result.values = {k: v for k, v in second.values.items() if k not in result.errors}
    result.ignored = tuple(
        i.id for i in items if i.id not in shown and (_given(form, i) or i.id in declined)
    )
    return result


def read_form(form, definition, today) -> FormInput:
    """Read every item of a paper form."""
    return read_items(form, definition, [i.id for i in definition.items], {}, today)


def parse_day(text: str) -> dt.date | None:
    """YYYY-MM-DD (the date field) or 3.3.2026 typed by hand; None when it is neither."""
    text = (text or "").strip()
    match = re.fullmatch(r"(\d{1,2})[./](\d{1,2})[./](\d{4})", text)
    try:
        if match:
            day, month, year = (int(x) for x in match.groups())
            return dt.date(year, month, day)
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def read_resolution(form, definition, made: list, found: list) -> tuple[dict, list]:
    """The values chosen where two entries differ, and the errors as (anchor, message).

    made: the two entries; found: their differences (paper.compare). Items both entries
    answered alike stay as they are; the differing ones are read with the form's validation.
    """
    first, second = made[0]["answers"], made[1]["answers"]
    base = {k: v for k, v in first.items() if k in second and second[k] == v}
    chosen, errors = {}, []
    if any(d.item == FILLED_ON for d in found):
        day = parse_day(form.get("filled_on", ""))
        if day is None:
            errors.append(("filled_on", _("Write the day the form was filled in, e.g. 3.3.2026.")))
        else:
            chosen[FILLED_ON] = day.isoformat()
    today = dt.date.fromisoformat(chosen.get(FILLED_ON, made[0]["filled_on"]))
    items = [d.item for d in found if d.item != FILLED_ON]
    read = read_items(form, definition, items, base, today)
    numbers = paper_form(definition).numbers
    errors += [(f"e-{i}-0", f"{numbers[i]}. {m}") for i, m in read.errors.items()]
    chosen.update(read.values)
    return chosen, errors
