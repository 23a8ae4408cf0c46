"""CSV, long (one row per answer or score) and wide (one row per participant × timepoint).

Pure and streaming: each writer takes an iterator of records and writes row by row to a
text stream; the wide writer holds one participant × timepoint row at a time, so its
input must come sorted by study code and protocol timepoint order (source.py does).

The assessment's own values go with each participant × timepoint: the wide file has
`receipt_code` among the assessment columns, then per derived value `<id>` and
`<id>_reason`; the long file has a `receipt_code` column (last, so the earlier columns keep
their places) and, after the responses of a timepoint, a row of kind `derived` per derived
value of that timepoint.

Each response's source (`phone`, or `paper` for a form entered by staff) is the wide file's
`<questionnaire>_source` beside its status, and the long file's last column `source` (empty
on derived rows).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

from .model import ExportRecord, cell
from .variables import (
    RECEIPT_CODE,
    Variable,
    assessment_variables,
    study_order,
    value_of,
    variables_for,
)

BOM = "\ufeff"
DELIMITERS = (",", ";")
RESPONSE_META = ("status", "source", "submitted_at", "definition_version")
WIDE_META = (
    "study_code",
    "site",
    "timepoint",
    "target_day",
    "first_day",
    "last_day",
    "actual_date",
    RECEIPT_CODE,
)
LONG_HEADER = (
    "study_code",
    "site",
    "timepoint",
    "questionnaire",
    "kind",
    "item",
    "value",
    "reason",
    "status",
    "response_uuid",
    "response_version",
    "definition_version",
    "definition_hash",
    "target_day",
    "first_day",
    "last_day",
    "actual_date",
    "started_at",
    "submitted_at",
    RECEIPT_CODE,
    "source",
)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A negative number as `cell` writes one (int, or float repr): data, not a formula.
NEGATIVE_NUMBER = re.compile(r"-(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|-inf")


def excel_safe_cell(value):
    """Return text that a spreadsheet would run as a formula with a leading quote.

    Negative numbers (such as -1.5) are left as they are: they are data, not formulas. A
    leading '+' is always quoted, since the export never writes a number that way (a free
    text '+1' would otherwise show as the number 1).
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    if NEGATIVE_NUMBER.fullmatch(value):
        return value
    return "'" + value


class _ExcelSafeWriter:
    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row):
        return self._writer.writerow([excel_safe_cell(v) for v in row])


def csv_writer(stream: TextIO, delimiter: str = ",", bom: bool = False, excel_safe: bool = False):
    """A csv writer on stream (CRLF line ends, minimal quoting), after the BOM if asked.

    excel_safe: cells that start like a formula get a leading quote (OWASP's advice for
    CSV injection); the file then differs from the stored text, so it is an option.
    """
    if delimiter not in DELIMITERS:
        raise ValueError(f"delimiter must be one of {DELIMITERS}, not {delimiter!r}")
    if bom:
        stream.write(BOM)
    writer = csv.writer(stream, delimiter=delimiter, lineterminator="\r\n")
    return _ExcelSafeWriter(writer) if excel_safe else writer


def write_long(
    stream: TextIO,
    records: Iterable[ExportRecord],
    *,
    delimiter: str = ",",
    bom: bool = False,
    excel_safe: bool = False,
) -> int:
    """Write one row per item and per score of each record; return the number of rows."""
    writer = csv_writer(stream, delimiter, bom, excel_safe)
    writer.writerow(LONG_HEADER)
    count = 0
    first = None  # the first record of the current participant × timepoint
    first_day = ""  # and its first submission day
    for r in records:
        if first is None or (first.study_code, first.timepoint) != (r.study_code, r.timepoint):
            count += _write_derived(writer, first, first_day)
            first, first_day = r, ""
        if r.actual_date and (not first_day or r.actual_date < first_day):
            first_day = r.actual_date
        tail = (
            r.status,
            r.response_uuid,
            r.response_version,
            r.definition_version,
            r.definition_hash,
            r.target_day,
            r.first_day,
            r.last_day,
            cell(r.actual_date),
            r.started_at,
            cell(r.submitted_at),
            cell(r.assessment.receipt_code),
            r.source,
        )
        head = (r.study_code, r.site, r.timepoint, r.questionnaire)
        for item, value in r.items.items():
            writer.writerow((*head, "item", item, cell(value), "", *tail))
            count += 1
        for score, result in r.scores.items():
            writer.writerow((*head, "score", score, cell(result.value), cell(result.reason), *tail))
            count += 1
    count += _write_derived(writer, first, first_day)
    return count


def _write_derived(writer, record: ExportRecord | None, first_day: str) -> int:
    """The derived values of a participant × timepoint: no questionnaire, no response."""
    if record is None:
        return 0
    head = (record.study_code, record.site, record.timepoint, "", "derived")
    no_response = ("",) * 5
    days = (record.target_day, record.first_day, record.last_day, first_day)
    tail = (*no_response, *days, "", "", cell(record.assessment.receipt_code), "")
    for name, result in record.assessment.derived.items():
        writer.writerow((*head, name, cell(result.value), cell(result.reason), *tail))
    return len(record.assessment.derived)


@dataclass(frozen=True)
class WideLayout:
    """The wide file's columns, fixed by the study and its definitions."""

    header: tuple[str, ...]
    variables: Mapping[str, tuple[Variable, ...]]  # questionnaire -> its variables
    timepoint_rank: Mapping[str, int]
    derived: tuple[Variable, ...] = ()  # each derived value and its reason column


def wide_layout(study, definitions: Mapping, questionnaires: Iterable[str] = ()) -> WideLayout:
    """Columns: the assessment (with its receipt code), the derived values that read a
    chosen questionnaire (each with its reason), then per questionnaire (protocol order)
    its status, source, submission time, definition version and variables.

    Questionnaires that never share a timepoint may share variable names (a weekly
    variant of a questionnaire): those share one column. Names shared within a timepoint
    are an error.
    """
    chosen = set(questionnaires)
    order = [q for q in study_order(study) if not chosen or q in chosen]
    header: dict[str, str] = dict.fromkeys(WIDE_META, "meta")
    derived = tuple(v for v in assessment_variables(study, chosen) if v.kind != "assessment")
    for v in derived:
        if header.setdefault(v.name, "derived") != "derived":
            raise ValueError(f"wide column name {v.name} is used twice")
    seen_meta = set(WIDE_META)
    variables = {q: variables_for(definitions[q]) for q in order}
    for q in order:
        columns = [(f"{q}_{m}", "meta") for m in RESPONSE_META]
        for name, kind in columns + [(v.name, "variable") for v in variables[q]]:
            if header.setdefault(name, kind) != kind or (kind == "meta" and name in seen_meta):
                raise ValueError(f"wide column name {name} is used twice")
            if kind == "meta":
                seen_meta.add(name)
    for timepoint in study.timepoints:
        seen: dict[str, str] = {}
        for q in timepoint.questionnaires:
            for v in variables.get(q, ()):
                if seen.setdefault(v.name, q) != q:
                    raise ValueError(
                        f"{timepoint.id}: {seen[v.name]} and {q} both have a variable {v.name}"
                    )
    rank = {t.id: n for n, t in enumerate(study.timepoints)}
    return WideLayout(tuple(header), variables, rank, derived)


def start_row(record: ExportRecord, layout: WideLayout) -> dict:
    """The assessment's columns of a new wide row, as values (None when empty)."""
    row = {
        "study_code": record.study_code,
        "site": record.site,
        "timepoint": record.timepoint,
        "target_day": record.target_day,
        "first_day": record.first_day,
        "last_day": record.last_day,
        "actual_date": None,
        RECEIPT_CODE: record.assessment.receipt_code,
    }
    for variable in layout.derived:
        row[variable.name] = value_of(variable, record)
    return row


def _fill(row: dict, record: ExportRecord, layout: WideLayout) -> None:
    if record.questionnaire not in layout.variables:
        raise ValueError(f"questionnaire {record.questionnaire} is not in the wide layout")
    q = record.questionnaire
    row[f"{q}_status"] = record.status
    row[f"{q}_source"] = record.source
    row[f"{q}_submitted_at"] = cell(record.submitted_at)
    row[f"{q}_definition_version"] = record.definition_version
    for variable in layout.variables[q]:
        if variable.name in row:
            raise ValueError(f"{record.study_code}/{record.timepoint}: {variable.name} twice")
        row[variable.name] = cell(value_of(variable, record))
    if record.actual_date and (not row["actual_date"] or record.actual_date < row["actual_date"]):
        row["actual_date"] = record.actual_date


def write_wide(
    stream: TextIO,
    records: Iterable[ExportRecord],
    layout: WideLayout,
    *,
    delimiter: str = ",",
    bom: bool = False,
    excel_safe: bool = False,
) -> int:
    """Write one row per participant × timepoint (actual_date = its first submission day);
    a questionnaire without a response leaves its cells empty. Return the number of rows."""
    writer = csv_writer(stream, delimiter, bom, excel_safe)
    writer.writerow(layout.header)
    count = 0
    key = row = None
    for record in records:
        if record.timepoint not in layout.timepoint_rank:
            raise ValueError(f"timepoint {record.timepoint} is not in the study")
        here = (record.study_code, layout.timepoint_rank[record.timepoint])
        if here != key:
            if key is not None and here < key:
                raise ValueError("records must be sorted by study code and timepoint")
            if row is not None:
                writer.writerow(row.get(name, "") for name in layout.header)
                count += 1
            key = here
            row = {name: cell(value) for name, value in start_row(record, layout).items()}
        _fill(row, record, layout)
    if row is not None:
        writer.writerow(row.get(name, "") for name in layout.header)
        count += 1
    return count
