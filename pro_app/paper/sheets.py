"""What a print page shows of each questionnaire of a timepoint, in one language."""

from __future__ import annotations

from .instructions import instruction
from .layout import paper_form


def conditions(form, language: str, gettext) -> dict:
    """{item id: «Answer only if ...»} for every item with a display condition."""
    definition = form.definition
    return {
        i.id: instruction(i.show_if, definition, form.numbers, language, gettext)
        for i in definition.items
        if i.show_if is not None
    }


def sheets(questionnaires, timepoint, language: str, gettext) -> list[dict]:
    """One sheet per questionnaire of the timepoint: layout, title, version, instructions."""
    found = []
    for qid in timepoint.questionnaires:
        definition = questionnaires[qid]
        form = paper_form(definition)
        found.append(
            {
                "form": form,
                "title": definition.title.get(language),
                "version": definition.version,
                "instructions": definition.instructions.get(language),
                "conditions": conditions(form, language, gettext),
            }
        )
    return found
