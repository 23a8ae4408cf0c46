"""Where two independent entries of one paper form differ (double data entry)."""

from __future__ import annotations

from dataclasses import dataclass

FILLED_ON = ":filled_on"  # not an item id (ids have no colon): the day the form was filled in


@dataclass(frozen=True)
class Difference:
    """One item (or FILLED_ON) whose two entries differ; None where an entry has no answer."""

    item: str
    number: int | None
    first: object
    second: object


def differences(numbers, first: dict, second: dict) -> list[Difference]:
    """Every difference, the fill-in day first, then items in the form's order.

    first, second: {item: value} as stored, plus FILLED_ON; numbers: item -> question number.
    An item answered in one entry and not asked in the other (a condition read differently)
    is a difference too.
    """
    found = []
    if first.get(FILLED_ON) != second.get(FILLED_ON):
        found.append(Difference(FILLED_ON, None, first.get(FILLED_ON), second.get(FILLED_ON)))
    for item, number in sorted(numbers.items(), key=lambda pair: pair[1]):
        if first.get(item) != second.get(item):
            found.append(Difference(item, number, first.get(item), second.get(item)))
    return found


def agreed(first: dict, second: dict) -> dict:
    """The items both entries answered alike (FILLED_ON left out)."""
    return {
        item: value
        for item, value in first.items()
        if item != FILLED_ON and item in second and second[item] == value
    }
