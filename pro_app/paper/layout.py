"""A questionnaire laid out for paper: numbered questions in sections, from the definition."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from ..domain.model import LocalText, Questionnaire


@dataclass(frozen=True)
class PaperItem:
    """One question as printed: its number on the form and its definition."""

    number: int
    item: object


@dataclass(frozen=True)
class Section:
    """Consecutive pages under one title (or none), with the intro of the first page."""

    title: LocalText | None
    intro: LocalText | None
    items: tuple[PaperItem, ...]


@dataclass(frozen=True)
class PaperForm:
    """Every question of a definition, numbered 1.. in page order, grouped in sections."""

    definition: Questionnaire
    sections: tuple[Section, ...]
    numbers: MappingProxyType  # item id -> question number

    @property
    def items(self) -> tuple[PaperItem, ...]:
        return tuple(p for s in self.sections for p in s.items)


def paper_form(definition: Questionnaire) -> PaperForm:
    """Lay out every item, hidden or not: paper shows each question with its condition.

    A page with the same title as the page before (or, like it, none) shares its section: a
    title repeated on each phone screen is printed once.
    """
    numbers: dict[str, int] = {}
    groups: list[tuple[LocalText | None, LocalText | None, list[PaperItem]]] = []
    for page in definition.pages:
        placed = []
        for item_id in page.items:
            numbers[item_id] = len(numbers) + 1
            placed.append(PaperItem(numbers[item_id], definition.item(item_id)))
        if groups and groups[-1][0] == page.title and not page.intro:
            groups[-1][2].extend(placed)
        else:
            groups.append((page.title, page.intro, placed))
    sections = tuple(Section(title, intro, tuple(items)) for title, intro, items in groups)
    return PaperForm(definition, sections, MappingProxyType(numbers))
