"""The pages and items a participant sees, given their answers so far."""

from __future__ import annotations

from collections.abc import Mapping

from .conditions import holds
from .model import Page, Questionnaire


def visible_items(definition: Questionnaire, answers: Mapping) -> tuple[str, ...]:
    """Return the ids of the items shown, in order; hidden items' answers do not count."""
    items = definition.items_by_id
    shown: dict = {}
    for page in definition.pages:
        # Conditions see only answers from earlier pages that were themselves shown.
        earlier = dict(shown)
        for item_id in page.items:
            condition = items[item_id].show_if
            if condition is None or holds(condition, earlier):
                shown[item_id] = answers.get(item_id)
    return tuple(shown)


def page_path(definition: Questionnaire, answers: Mapping) -> tuple[Page, ...]:
    """Return the pages shown (those with at least one visible item), in order."""
    visible = set(visible_items(definition, answers))
    return tuple(p for p in definition.pages if any(i in visible for i in p.items))


def effective_answers(definition: Questionnaire, answers: Mapping) -> dict:
    """Return only the answers to items that are on the participant's path."""
    return {i: answers.get(i) for i in visible_items(definition, answers)}
