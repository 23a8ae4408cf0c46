"""REDCap records: a flat import file, one row per participant and event."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from ...domain.answers import NON_ANSWERS
from ...domain.model import (
    MultipleChoice,
    Questionnaire,
)
from ..model import ExportRecord, cell
from ..variables import value_of, variables_for
from .dictionary import (
    ASSESSMENT_FORM,
    COMPLETE,
    DERIVED_FORM,
    FIRST_FORM,
    RECORD_ID,
    _form_definitions,
    _writer,
    event_name,
    forms,
    study_forms,
)


@dataclass(frozen=True)
class _Layout:
    header: tuple[str, ...]
    form_of: dict[str, str]
    variables: dict[str, tuple]  # questionnaire -> variables written (checkbox: options only)
    own: dict[str, tuple]  # the timepoint's own forms (receipt code, derived) -> variables


def records_layout(catalog) -> _Layout:
    form_of = forms(catalog)
    definitions = _form_definitions(catalog)
    own = study_forms(catalog.study)
    header = [RECORD_ID, "redcap_event_name", "site", f"{FIRST_FORM}_complete"]
    for form, definition in definitions.items():
        header.extend(v.name for v in _written(definition))
        header.append(f"{form}_complete")
    for form, written in own.items():
        header.extend(v.name for v in written)
        header.append(f"{form}_complete")
    variables = {qid: _written(catalog.questionnaires[qid]) for qid in form_of}
    return _Layout(tuple(header), form_of, variables, own)


def _written(definition: Questionnaire) -> tuple:
    """The definition's variables as REDCap columns: a checkbox has only its options."""
    multiple = {i.id for i in definition.items if isinstance(i, MultipleChoice)}
    return tuple(
        v for v in variables_for(definition) if not (v.source in multiple and v.option is None)
    )


def _value(variable, record: ExportRecord) -> str:
    value = value_of(variable, record)
    if isinstance(value, str) and value in NON_ANSWERS and variable.kind == "item":
        return ""  # declined / not applicable: REDCap leaves the field empty
    return cell(value)


def _own_values(row: dict, record: ExportRecord, layout: _Layout) -> None:
    """The timepoint's receipt code and derived values, where it has them."""
    values = record.assessment
    if values.receipt_code is not None and ASSESSMENT_FORM in layout.own:
        for variable in layout.own[ASSESSMENT_FORM]:
            row[variable.name] = cell(value_of(variable, record))
        row[f"{ASSESSMENT_FORM}_complete"] = "2"
    if values.derived and DERIVED_FORM in layout.own:
        for variable in layout.own[DERIVED_FORM]:
            row[variable.name] = cell(value_of(variable, record))
        row[f"{DERIVED_FORM}_complete"] = "2"


def write_records(stream: TextIO, records: Iterable[ExportRecord], catalog) -> int:
    """Write the flat import file (one row per participant × event); return the rows."""
    layout = records_layout(catalog)
    study = catalog.study
    first_event = event_name(study.timepoints[0].id)
    rank = {t.id: n for n, t in enumerate(study.timepoints)}
    writer = _writer(stream)
    writer.writerow(layout.header)
    count = 0
    row: dict | None = None
    last_key = None

    def flush():
        nonlocal count
        if row is not None:
            writer.writerow([row.get(h, "") for h in layout.header])
            count += 1

    for record in records:
        key = (record.study_code, rank[record.timepoint])
        if last_key is not None and key < last_key:
            raise ValueError("records must be sorted by study code and timepoint order")
        if key != last_key:
            flush()
            if last_key is None or record.study_code != last_key[0]:
                participant = {
                    RECORD_ID: record.study_code,
                    "redcap_event_name": first_event,
                    "site": record.site,
                    f"{FIRST_FORM}_complete": "2",
                }
                if key[1] != 0:  # no data on the first event: a row for site alone
                    row = participant
                    flush()
                    row = {RECORD_ID: record.study_code}
                else:
                    row = participant
            else:
                row = {RECORD_ID: record.study_code}
            row["redcap_event_name"] = event_name(record.timepoint)
            _own_values(row, record, layout)
            last_key = key
        form = layout.form_of[record.questionnaire]
        status = f"{form}_complete"
        if status in row:
            raise ValueError(
                f"{record.study_code} {record.timepoint}: two responses for the form {form}"
            )
        row[status] = COMPLETE[record.status]
        for variable in layout.variables[record.questionnaire]:
            row[variable.name] = _value(variable, record)
    flush()
    return count
