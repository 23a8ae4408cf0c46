"""Answer values: a code, 'declined', 'not_applicable' or nothing; and checking them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from .errors import AnswerError
from .model import Date, Integer, MultipleChoice, Questionnaire, Text

DECLINED = "declined"
NOT_APPLICABLE = "not_applicable"
NON_ANSWERS = (DECLINED, NOT_APPLICABLE)


def is_given(value) -> bool:
    """True for a real answer (not missing, not declined, not 'not applicable')."""
    return value is not None and value not in NON_ANSWERS


def number(value) -> int | None:
    """Return the numeric code of an answer, or None when it has none."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _as_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _codes_text(codes) -> str:
    codes = sorted(codes)
    if codes == list(range(codes[0], codes[-1] + 1)) and len(codes) > 2:
        return f"{codes[0]}-{codes[-1]}"
    return ", ".join(str(c) for c in codes)


def check_value(item, value, *, strict: bool, today: dt.date | None = None):
    """Return (normalised value, None) or (None, error text) for one item's answer."""
    if value is None or value == []:
        return None, None
    if value == DECLINED:
        if strict and not item.skippable:
            return None, "cannot be declined (the item is not skippable)"
        return value, None
    if value == NOT_APPLICABLE:
        if strict and item.not_applicable is None:
            return None, "does not offer 'not applicable'"
        return value, None
    if isinstance(item, Text):
        if not isinstance(value, str):
            return None, f"{value!r} is not text"
        if len(value) > item.max_length:
            return None, f"is longer than {item.max_length} characters"
        return value, None
    if isinstance(item, Date):
        try:
            day = dt.date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            day = None
        if day is None:
            return None, f"{value!r} is not a date; write it as YYYY-MM-DD"
        if item.not_in_future and today is not None and day > today:
            return None, f"{value} is in the future"
        return day.isoformat(), None
    if isinstance(item, MultipleChoice):
        return _check_multiple(item, value)
    code = _as_int(value)
    if code is None:
        return None, (
            f"{value!r} is not a code; use a whole number, 'declined', 'not_applicable' or null"
        )
    if isinstance(item, Integer):
        if not item.min <= code <= item.max:
            return None, f"{code} is outside {item.min}-{item.max}"
        return code, None
    if code not in item.codes():
        return None, f"{code} is not one of its codes ({_codes_text(item.codes())})"
    return code, None


def _check_multiple(item: MultipleChoice, value):
    if not isinstance(value, list):
        return None, f"{value!r} is not a list of codes"
    codes = [_as_int(v) for v in value]
    if any(c is None for c in codes):
        return None, f"{value!r} is not a list of whole-number codes"
    wrong = [c for c in codes if c not in item.codes()]
    if wrong:
        return None, f"{wrong} not among its codes ({_codes_text(item.codes())})"
    if len(set(codes)) != len(codes):
        return None, "lists a code twice"
    if item.max_selected is not None and len(codes) > item.max_selected:
        return None, f"has more than {item.max_selected} choices"
    return sorted(codes), None


def validate_answers(
    definition: Questionnaire,
    answers: Mapping,
    *,
    strict: bool = False,
    today: dt.date | None = None,
) -> dict:
    """Check answers against a definition; return them normalised or raise AnswerError.

    strict: declined only for skippable items, not_applicable only where offered
    (the participant pages); the score command accepts both words for any item.
    """
    if not isinstance(answers, Mapping):
        raise AnswerError([f"{definition.id}: answers must be an object of item id -> value"])
    items = definition.items_by_id
    errors: list[str] = []
    clean: dict = {}
    for item_id, value in answers.items():
        item = items.get(item_id)
        if item is None:
            errors.append(f"{definition.id}: unknown item id '{item_id}'")
            continue
        normal, error = check_value(item, value, strict=strict, today=today)
        if error:
            errors.append(f"{definition.id}.{item_id}: {error}")
        else:
            clean[item_id] = normal
    if errors:
        raise AnswerError(errors)
    return clean
