"""Display conditions said in words for paper: «Answer only if you answered Yes to question 3».

The phone evaluates a condition and simply shows or hides a question; on paper every
question is printed, so its condition becomes an instruction. The words come from the
condition and the labels of the item it reads, in the participant's language. The caller
passes its gettext (flask_babel's), so this module needs no request.
"""

from __future__ import annotations

import operator

from ..domain.model import Condition, MultipleChoice, SingleChoice, YesNo

COMPARE = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "eq": operator.eq,
    "ne": operator.ne,
}


def _labels(item, language: str) -> dict[int, str]:
    """The words of each code of an item whose answers are options (else empty)."""
    if isinstance(item, YesNo):
        return {1: item.yes.get(language), 0: item.no.get(language)}
    if isinstance(item, SingleChoice | MultipleChoice):
        return {o.code: o.label.get(language) for o in item.options}
    return {}


def _one_of(words: list[str], gettext) -> str:
    """«A», «B» or «C»."""
    quoted = [gettext("“%(words)s”", words=w) for w in words]
    if len(quoted) == 1:
        return quoted[0]
    return gettext("%(first)s or %(last)s", first=", ".join(quoted[:-1]), last=quoted[-1])


def _numbers(values, gettext) -> str:
    texts = [str(v) for v in values]
    if len(texts) == 1:
        return texts[0]
    return gettext("%(first)s or %(last)s", first=", ".join(texts[:-1]), last=texts[-1])


def _chosen_codes(condition: Condition, codes) -> tuple[list[int], bool]:
    """The codes that meet the condition, and whether it is said as "did not answer"."""
    op, value = condition.op, condition.value
    if op in ("in", "not_in"):
        return [c for c in codes if c in value], op == "not_in"
    if op == "ne":
        return [value], True
    return [c for c in codes if COMPARE[op](c, value)], False


def clause(condition: Condition, definition, numbers, language: str, gettext) -> str:
    """One comparison on one item, as words (without «Answer only if»)."""
    number = numbers[condition.item]
    item = definition.item(condition.item)
    if condition.op == "answered":
        return gettext("you answered question %(number)s", number=number)
    if condition.op == "declined":
        return gettext("you did not want to answer question %(number)s", number=number)
    labels = _labels(item, language)
    if labels:
        codes, negated = _chosen_codes(condition, list(labels))
        words = _one_of([labels[c] for c in codes], gettext)
        if negated:
            return gettext(
                "you did not answer %(answers)s to question %(number)s",
                answers=words,
                number=number,
            )
        return gettext(
            "you answered %(answers)s to question %(number)s", answers=words, number=number
        )
    # Numbers (a scale, a whole number): compare with the number itself.
    if condition.op in ("in", "not_in"):
        said = _numbers(condition.value, gettext)
        if condition.op == "not_in":
            return gettext(
                "your answer to question %(number)s is not %(value)s", number=number, value=said
            )
        return gettext("your answer to question %(number)s is %(value)s", number=number, value=said)
    texts = {
        "gt": gettext("your answer to question %(number)s is more than %(value)s"),
        "ge": gettext("your answer to question %(number)s is %(value)s or more"),
        "lt": gettext("your answer to question %(number)s is less than %(value)s"),
        "le": gettext("your answer to question %(number)s is %(value)s or less"),
        "eq": gettext("your answer to question %(number)s is %(value)s"),
        "ne": gettext("your answer to question %(number)s is not %(value)s"),
    }
    return texts[condition.op] % {"number": number, "value": condition.value}


def _words(condition: Condition, definition, numbers, language: str, gettext, nested=False):
    if condition.item is not None:
        return clause(condition, definition, numbers, language, gettext)
    parts = [
        _words(part, definition, numbers, language, gettext, nested=True)
        for part in (condition.all or condition.any)
    ]
    if len(parts) == 1:
        return parts[0]
    first, last = ", ".join(parts[:-1]), parts[-1]
    if condition.all:
        joined = gettext("%(first)s and %(last)s", first=first, last=last)
    else:
        joined = gettext("%(first)s or %(last)s", first=first, last=last)
    return f"({joined})" if nested else joined


def instruction(condition: Condition, definition, numbers, language: str, gettext) -> str:
    """«Answer only if you answered “Yes” to question 3.» for an item's display condition."""
    return gettext(
        "Answer only if %(condition)s.",
        condition=_words(condition, definition, numbers, language, gettext),
    )
