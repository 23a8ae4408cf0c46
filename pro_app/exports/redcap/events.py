"""REDCap events (one per timepoint, arm 1) and the form-event mapping."""

from __future__ import annotations

from typing import TextIO

from .dictionary import (
    ARM,
    ASSESSMENT_FORM,
    DERIVED_FORM,
    EVENTS_HEADER,
    FIRST_FORM,
    MAPPING_HEADER,
    _writer,
    event_name,
    forms_of,
    study_forms,
)


def write_events(stream: TextIO, study) -> int:
    """Write one event per timepoint (arm 1); return the number of events."""
    writer = _writer(stream)
    writer.writerow(EVENTS_HEADER)
    for timepoint in study.timepoints:
        window = timepoint.window or study.windows
        writer.writerow(
            (
                timepoint.id,
                ARM,
                timepoint.day,
                window.before,
                window.after,
                event_name(timepoint.id),
                timepoint.label.nb,
            )
        )
    return len(study.timepoints)


def mappings(study, form_of: dict[str, str]) -> list[tuple[int, str, str]]:
    """(arm, unique event name, form) for every form of every timepoint, participant first;
    after a timepoint's questionnaires its receipt code's form and (where the study derives
    values at that timepoint) the derived values' form."""
    rows = [(ARM, event_name(study.timepoints[0].id), FIRST_FORM)]
    own = study_forms(study)
    derived_at = {rule.timepoint for rule in study.derived}
    for timepoint in study.timepoints:
        seen: dict[str, None] = {}
        for qid in timepoint.questionnaires:
            seen.setdefault(form_of[qid])
        if ASSESSMENT_FORM in own:
            seen.setdefault(ASSESSMENT_FORM)
        if DERIVED_FORM in own and timepoint.id in derived_at:
            seen.setdefault(DERIVED_FORM)
        rows.extend((ARM, event_name(timepoint.id), form) for form in seen)
    return rows


def write_mappings(stream: TextIO, study, questionnaires) -> int:
    """Write the form-event mapping; return the number of rows.

    questionnaires: the definitions by id (a catalog's), to see which questionnaires share
    a form (no questionnaire id is written into the code).
    """
    writer = _writer(stream)
    writer.writerow(MAPPING_HEADER)
    rows = mappings(study, forms_of(study, questionnaires))
    writer.writerows(rows)
    return len(rows)
