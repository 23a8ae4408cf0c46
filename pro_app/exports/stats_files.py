"""SPSS `.sav` and Stata `.dta` files in the wide shape (one row per participant × timepoint).

Pure: no Flask, no SQL. The rows and columns are those of `csv_writers.write_wide` (the
same `WideLayout`); the values are typed:

- codes, integers and scores are numbers (doubles); booleans (cutoff scores and the 0/1
  option columns of a multiple-choice item) are 0/1 with value labels;
- `declined` / `not_applicable` are SPSS user-missing −7 / −8 (declared as discrete missing
  values, labelled "Vil ikke svare" / "Ikke aktuelt" or in English) and Stata extended
  missing `.a` / `.b` (labelled the same way);
- text, date answers (which may be declined), a multiple-choice item's own column (the
  codes joined with '|'), band scores (their text value), status, source (`phone` or
  `paper`), submission time (UTC, ISO 8601) and definition version are strings. In a SPSS
  string variable `declined` / `not_applicable` are "-7" / "-8", declared user-missing and
  labelled; Stata strings have no missing codes, so there they are the words `declined` /
  `not_applicable`, as in the CSV;
- the assessment days (target, window, actual date) are dates (SPSS DATE11, Stata %td);
- the receipt code and the reason a derived value is empty are strings; a derived value is
  0/1 with value labels, like a cut-off score.

Every coded variable has value labels: numeric codes in both formats; band scores (string
values) only in SPSS, since Stata labels only integers (the codebook has them all).

Limits (checked, not guessed): variable names must be valid SPSS (≤ 64 bytes) and Stata
(≤ 32 characters) names, else ValueError lists them; Stata variable labels are cut to 80
characters, SPSS variable labels to 255 bytes and SPSS value labels to 120 bytes, each
ending with '…' when cut (readstat rejects longer Stata labels and silently cuts SPSS value
labels, possibly inside a UTF-8 character).

Reproducible bytes: pyreadstat (1.3.7) has no way to set the creation time that readstat
stamps into the file header from the clock (to the second in `.sav`, to the minute in
`.dta`). After writing, that stamp is overwritten in place with the time of the latest
submission (or start, for partial responses) in the study's time zone, so the same data give
the same bytes. The field is located and checked before it is changed.

Memory: pyreadstat writes from a DataFrame, so unlike the CSV writers this one holds the
whole table: 8 bytes per numeric cell plus the strings, built column by column (no per-row
dicts are kept). Measured with the shipped study (219 columns), pyreadstat 1.3.7 and pandas
3.1: 300,000 rows (10,000 participants × 30 timepoints) peak at about 590 MB (.sav) and
730 MB (.dta, whose .a/.b columns hold objects) above the process, take about 40 s, and
give files of about 610 MB and 550 MB; memory grows linearly with rows × columns.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..domain.answers import DECLINED, NOT_APPLICABLE
from .csv_writers import RESPONSE_META, WIDE_META, WideLayout, start_row
from .model import LIST_SEPARATOR, ExportRecord
from .stats_labels import (
    LANGUAGES,
    code_labels,
    cut_bytes,
    cut_chars,
    missing_label,
    variable_label,
)
from .stats_stamps import file_stamp, set_dta_stamp, set_sav_stamp
from .variables import RECEIPT_CODE, Variable, value_of

SPSS_MISSING = {DECLINED: -7.0, NOT_APPLICABLE: -8.0}
STATA_MISSING = {DECLINED: "a", NOT_APPLICABLE: "b"}
SPSS_NAME_BYTES = 64
STATA_NAME_CHARS = 32
SPSS_LABEL_BYTES = 255
SPSS_VALUE_LABEL_BYTES = 120
STATA_LABEL_CHARS = 80
STRING_TYPES = ("text", "date", "category")
META_LABELS = {
    "study_code": ("Studiekode", "Study code"),
    "site": ("Senter", "Site"),
    "timepoint": ("Tidspunkt", "Timepoint"),
    "target_day": ("Måldag", "Target day"),
    "first_day": ("Første dag i vinduet", "First day of the window"),
    "last_day": ("Siste dag i vinduet", "Last day of the window"),
    "actual_date": ("Dato for første innsending", "Date of the first submission"),
    RECEIPT_CODE: ("Kvitteringskode for tidspunktet", "Receipt code of the timepoint"),
}
RESPONSE_LABELS = {
    "status": ("status (submitted eller partial)", "status (submitted or partial)"),
    "source": ("kilde (phone eller paper)", "source (phone or paper)"),
    "submitted_at": ("sendt inn (UTC)", "submitted at (UTC)"),
    "definition_version": ("definisjonsversjon", "definition version"),
}
DATE_META = ("target_day", "first_day", "last_day", "actual_date")
SPSS_EPOCH = dt.date(1582, 10, 14)  # SPSS dates: seconds since this day
STATA_EPOCH = dt.date(1960, 1, 1)  # Stata %td: days since this day
SPSS_RESERVED = {"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"}
STATA_RESERVED = {
    "_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long",
    "_n", "_N", "_pi", "_pred", "_rc", "_skip", "strL", "using", "with",
}  # fmt: skip
SPSS_NAME = re.compile(r"[A-Za-z@][A-Za-z0-9_.@#$]*")
STATA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Column:
    """One column of the file: how its values are stored and labelled."""

    name: str
    kind: str  # string | date | number
    label_nb: str
    label_en: str
    codes: tuple[tuple[str, str, str], ...] = ()  # (code, nb, en), non-answers excluded
    non_answers: frozenset = frozenset()  # declined / not_applicable allowed by definition
    item: bool = False  # an item's value: may hold declined / not_applicable


def _columns(layout: WideLayout) -> list[Column]:
    found: dict[str, list[Variable]] = {v.name: [v] for v in layout.derived}
    for variables in layout.variables.values():
        for v in variables:
            found.setdefault(v.name, []).append(v)
    columns = []
    for name in layout.header:
        if name in WIDE_META:
            kind = "date" if name in DATE_META else "string"
            columns.append(Column(name, kind, *META_LABELS[name]))
        elif name in found:
            columns.append(_variable_column(name, found[name]))
        else:
            q, meta = next(
                (q, m) for q in layout.variables for m in RESPONSE_META if name == f"{q}_{m}"
            )
            nb, en = RESPONSE_LABELS[meta]
            columns.append(Column(name, "string", f"{q}: {nb}", f"{q}: {en}"))
    return columns


def _variable_column(name: str, variables: list[Variable]) -> Column:
    """One column for the variables of that name (questionnaires that share item ids)."""
    first = variables[0]
    kind = "string" if first.type in STRING_TYPES else "number"
    codes: dict[str, tuple[str, str, str]] = {}
    for v in variables:
        if ("string" if v.type in STRING_TYPES else "number") != kind:
            raise ValueError(f"{name}: {first.questionnaire} and {v.questionnaire} differ in type")
        for code in v.codes:
            codes.setdefault(code[0], code)
    non_answers = frozenset(c for c in codes if c in SPSS_MISSING)
    if first.type == "text":  # a multiple-choice item's own column: codes joined with '|'
        codes = {c: codes[c] for c in non_answers}
    return Column(
        name=name,
        kind=kind,
        label_nb=first.label_nb,
        label_en=first.label_en,
        codes=tuple(c for c in codes.values() if c[0] not in SPSS_MISSING),
        non_answers=non_answers,
        item=first.kind == "item" and first.option is None,
    )


def name_problems(names: Iterable[str]) -> list[str]:
    """Return a message per name that SPSS or Stata would not accept (or would confuse)."""
    problems, seen_spss = [], {}
    for name in names:
        if len(name.encode()) > SPSS_NAME_BYTES:
            problems.append(f"{name}: longer than {SPSS_NAME_BYTES} bytes (SPSS)")
        if len(name) > STATA_NAME_CHARS:
            problems.append(f"{name}: longer than {STATA_NAME_CHARS} characters (Stata)")
        if not SPSS_NAME.fullmatch(name) or name.endswith(".") or name.upper() in SPSS_RESERVED:
            problems.append(f"{name}: not a valid SPSS variable name")
        if (
            not STATA_NAME.fullmatch(name)
            or name in STATA_RESERVED
            or re.fullmatch(r"str\d+", name)
        ):
            problems.append(f"{name}: not a valid Stata variable name")
        other = seen_spss.setdefault(name.upper(), name)
        if other != name:
            problems.append(f"{name}: the same SPSS name as {other} (SPSS ignores case)")
    return problems


def _wide_rows(records: Iterable[ExportRecord], layout: WideLayout, latest: list) -> Iterator:
    """Yield one dict per participant × timepoint with raw values, as write_wide groups them.

    latest[0] is kept at the greatest submission (or start) time seen, as stored (UTC text).
    """
    key = row = None
    for record in records:
        if record.timepoint not in layout.timepoint_rank:
            raise ValueError(f"timepoint {record.timepoint} is not in the study")
        if record.questionnaire not in layout.variables:
            raise ValueError(f"questionnaire {record.questionnaire} is not in the wide layout")
        here = (record.study_code, layout.timepoint_rank[record.timepoint])
        if here != key:
            if key is not None and here < key:
                raise ValueError("records must be sorted by study code and timepoint")
            if row is not None:
                yield row
            key = here
            row = start_row(record, layout)
        q = record.questionnaire
        row[f"{q}_status"] = record.status
        row[f"{q}_source"] = record.source
        row[f"{q}_submitted_at"] = record.submitted_at
        row[f"{q}_definition_version"] = record.definition_version
        for variable in layout.variables[q]:
            if variable.name in row:
                raise ValueError(f"{record.study_code}/{record.timepoint}: {variable.name} twice")
            row[variable.name] = value_of(variable, record)
        first = row["actual_date"]
        if record.actual_date and (not first or record.actual_date < first):
            row["actual_date"] = record.actual_date
        moment = record.submitted_at or record.started_at
        if moment and (latest[0] is None or moment > latest[0]):
            latest[0] = moment
    if row is not None:
        yield row


class _Store:
    """The table, column by column: numbers and dates in arrays of doubles, strings in lists."""

    def __init__(self, columns: list[Column], spss: bool):
        self.columns = columns
        self.spss = spss
        self.data = [array("d") if c.kind != "string" else [] for c in columns]
        self.seen_missing: list[set] = [set() for _ in columns]

    def add(self, row: dict) -> None:
        for n, column in enumerate(self.columns):
            value = row.get(column.name)
            if column.kind == "string":
                self.data[n].append(self._text(n, column, value))
            elif column.kind == "date":
                self.data[n].append(self._date(value))
            else:
                self.data[n].append(self._number(n, column, value))

    def _text(self, n: int, column: Column, value) -> str:
        if value is None:
            return ""
        if column.item and isinstance(value, str) and value in SPSS_MISSING:
            self.seen_missing[n].add(value)
            return f"{SPSS_MISSING[value]:.0f}" if self.spss else value
        if isinstance(value, list | tuple):
            return LIST_SEPARATOR.join(str(v) for v in value)
        return str(value)

    def _date(self, value) -> float:
        if not value:
            return math.nan
        day = dt.date.fromisoformat(value)
        if self.spss:
            return float((day - SPSS_EPOCH).days * 86400)
        return float((day - STATA_EPOCH).days)

    def _number(self, n: int, column: Column, value) -> float:
        if value is None:
            return math.nan
        if column.item and isinstance(value, str) and value in SPSS_MISSING:
            self.seen_missing[n].add(value)
            return SPSS_MISSING[value]
        if isinstance(value, bool | int | float):
            number = float(value)
            if column.item and number in SPSS_MISSING.values():
                raise ValueError(f"{column.name}: the answer {value} is a missing-value code")
            return number
        raise ValueError(f"{column.name}: {value!r} is not a number")

    def missing_of(self, n: int) -> list[str]:
        """The non-answers this column declares: allowed by its definition or present."""
        allowed = self.columns[n].non_answers | self.seen_missing[n]
        return [word for word in SPSS_MISSING if word in allowed]


def _frame(store: _Store, stata: bool):
    """The DataFrame, column by column; Stata's columns with .a/.b hold objects."""
    import numpy as np
    import pandas as pd

    frame = {}
    for n, column in enumerate(store.columns):
        values = store.data[n]
        if column.kind == "string":
            frame[column.name] = pd.Series(values, dtype=object)
        else:
            numbers = np.frombuffer(values, dtype=np.float64) if len(values) else np.empty(0)
            if stata and store.missing_of(n):
                holder = numbers.astype(object)
                for word, tag in STATA_MISSING.items():
                    holder[numbers == SPSS_MISSING[word]] = tag
                frame[column.name] = pd.Series(holder, dtype=object)
            else:
                frame[column.name] = pd.Series(numbers, dtype=np.float64)
        store.data[n] = None  # let the array go as soon as the frame holds it
    return pd.DataFrame(frame, copy=False)


def _collect(catalog, records, layout, language, spss: bool):
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {language!r}")
    columns = _columns(layout)
    problems = name_problems(c.name for c in columns)
    if problems:
        raise ValueError("variable names SPSS/Stata cannot use: " + "; ".join(problems))
    store = _Store(columns, spss)
    latest = [None]
    count = 0
    for row in _wide_rows(records, layout, latest):
        store.add(row)
        count += 1
    return store, count, file_stamp(latest[0], catalog.study.zone)


def write_sav(path, catalog, records: Iterable[ExportRecord], layout: WideLayout, language="nb"):
    """Write a SPSS .sav file of the wide rows; return the number of rows."""
    import pyreadstat

    store, count, stamp = _collect(catalog, records, layout, language, spss=True)
    labels, value_labels, missing, formats = {}, {}, {}, {}
    for n, column in enumerate(store.columns):
        labels[column.name] = cut_bytes(variable_label(column, language), SPSS_LABEL_BYTES)
        words = store.missing_of(n)
        numeric = column.kind == "number"
        if column.kind == "date":
            formats[column.name] = "DATE11"
            continue
        codes = code_labels(column, language, numeric)
        for word in words:
            key = SPSS_MISSING[word] if numeric else f"{SPSS_MISSING[word]:.0f}"
            codes[key] = missing_label(word, language)
            missing.setdefault(column.name, []).append(key)
        if codes:
            value_labels[column.name] = {
                k: cut_bytes(v, SPSS_VALUE_LABEL_BYTES) for k, v in codes.items()
            }
        if numeric and (column.codes or words or column.item):
            formats[column.name] = "F8.0"
    frame = _frame(store, stata=False)
    pyreadstat.write_sav(
        frame,
        os.fspath(path),
        column_labels=labels,
        variable_value_labels=value_labels,
        missing_ranges=missing,
        variable_format=formats,
    )
    del frame
    set_sav_stamp(path, stamp)
    return count


def write_dta(path, catalog, records: Iterable[ExportRecord], layout: WideLayout, language="nb"):
    """Write a Stata .dta file (format 119) of the wide rows; return the number of rows."""
    import pyreadstat

    store, count, stamp = _collect(catalog, records, layout, language, spss=False)
    labels, value_labels, missing, formats = {}, {}, {}, {}
    for n, column in enumerate(store.columns):
        labels[column.name] = cut_chars(variable_label(column, language), STATA_LABEL_CHARS)
        if column.kind == "date":
            formats[column.name] = "%td"
        if column.kind != "number":
            continue  # Stata labels integers only
        codes = {
            int(k): v for k, v in code_labels(column, language, True).items() if k.is_integer()
        }
        for word in store.missing_of(n):
            codes[STATA_MISSING[word]] = missing_label(word, language)
            missing.setdefault(column.name, []).append(STATA_MISSING[word])
        if codes:
            value_labels[column.name] = codes
    frame = _frame(store, stata=True)
    pyreadstat.write_dta(
        frame,
        os.fspath(path),
        column_labels=labels,
        variable_value_labels=value_labels,
        missing_user_values=missing,
        variable_format=formats,
    )
    del frame
    set_dta_stamp(path, stamp)
    return count
