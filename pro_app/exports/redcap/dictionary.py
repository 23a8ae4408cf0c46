"""REDCap: the data dictionary, events, form-event mapping and an import-ready records file.

Pure and streaming (no Flask, no SQL, standard library csv only). Shapes (DESIGN.md,
"REDCap shape"):

- The record id field `study_code` is the first field of the first form, `participant`,
  which also holds `site` (a dropdown of the study's site ids) and belongs to the first
  event of the schedule.
- One form per questionnaire. Questionnaires whose fields overlap share one form, named
  after the first of them in protocol order (in BackToBasic the fortnightly and weekly
  pain scales share one form); they must then have exactly the same field names, and the
  shared fields take their labels from the first one.
- Items: single choice, scale and yes/no are `radio` (the stored codes, Norwegian labels;
  a scale is laid out horizontally), multiple choice `checkbox` (`<item>___<code>` in the
  records), integer `text` with `integer` validation and min/max, date `text` with
  `date_ymd`, text `text` or `notes`. Declined and not applicable are left empty (they are
  not choices). Display conditions become branching logic; page titles section headers.
- Scores are ordinary fields tagged `@READONLY`: `text` with `integer` or `number`
  validation; a band score is a `dropdown` of its band values, a cut-off a `yesno` (1/0),
  since neither is a number.
- The values of a participant × timepoint that belong to no questionnaire are two forms
  of their own after the questionnaires. `assessment` holds `receipt_code` and is mapped to
  every event: a REDCap field belongs to one form, a timepoint's receipt code belongs to no
  questionnaire, and `participant` is on the first event only. `derived` holds each
  derived value of the study (`yesno`, read-only) with `<id>_reason` (why it is empty) and
  is mapped to the events of the derived values' timepoints. Neither name may be a
  questionnaire's form.
- Events: `event_name` = the timepoint id, so REDCap's unique name is `<timepoint>_arm_1`.
- Records: one row per participant × timepoint (the records must come sorted by study
  code and protocol timepoint order, as `source.records` yields them), plus a row on the
  first event holding `site` for a participant who has none there; `<form>_complete` is 2
  for a submitted response and 0 for a partial one; `assessment_complete` is 2 when the
  timepoint has a receipt code and `derived_complete` 2 where derived values are written.
"""

from __future__ import annotations

import csv
import re
from typing import TextIO

from ...domain.model import (
    BandsRule,
    Condition,
    CutoffRule,
    Date,
    Integer,
    MultipleChoice,
    Questionnaire,
    Scale,
    Text,
)
from ..model import SUBMITTED
from ..variables import assessment_variables, score_variable, study_order

RECORD_ID = "study_code"
FIRST_FORM = "participant"
ASSESSMENT_FORM = "assessment"  # the receipt code, on every event
DERIVED_FORM = "derived"  # the study's derived values, on their timepoints' events
ARM = 1
COMPLETE = {SUBMITTED: "2", "partial": "0"}
DICTIONARY_HEADER = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)
EVENTS_HEADER = (
    "event_name",
    "arm_num",
    "day_offset",
    "offset_min",
    "offset_max",
    "unique_event_name",
    "custom_event_label",
)
MAPPING_HEADER = ("arm_num", "unique_event_name", "form")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
RECOMMENDED_LENGTH = 26
MAX_LENGTH = 100
RESERVED = {
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
}
OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _writer(stream: TextIO):
    return csv.writer(stream, lineterminator="\r\n")


def event_name(timepoint_id: str) -> str:
    """REDCap's unique event name of a timepoint."""
    return f"{timepoint_id}_arm_{ARM}"


def _fields(definition: Questionnaire) -> tuple[str, ...]:
    """The REDCap field names of a definition (a checkbox is one field)."""
    return tuple(i.id for i in definition.items) + tuple(s.id for s in definition.scores)


def forms(catalog) -> dict[str, str]:
    """Map each questionnaire id to its REDCap form name (protocol order)."""
    return forms_of(catalog.study, catalog.questionnaires)


def study_forms(study) -> dict[str, tuple]:
    """The forms of the timepoint's own values and their variables (a form with none is
    left out): {form: variables}."""
    variables = assessment_variables(study)
    found = {
        ASSESSMENT_FORM: tuple(v for v in variables if v.kind == "assessment"),
        DERIVED_FORM: tuple(v for v in variables if v.kind != "assessment"),
    }
    return {form: found[form] for form in found if found[form]}


def forms_of(study, questionnaires) -> dict[str, str]:
    """Map each questionnaire id to its form: the study's in protocol order, then the rest."""
    reserved_forms = {FIRST_FORM, ASSESSMENT_FORM, DERIVED_FORM}
    reserved = {RECORD_ID, "site"} | {v.name for part in study_forms(study).values() for v in part}
    used = study_order(study)
    order = used + tuple(sorted(q for q in questionnaires if q not in used))
    found: dict[str, str] = {}
    owner: dict[str, str] = {}  # field name -> form
    for qid in order:
        fields = _fields(questionnaires[qid])
        shared = {owner[f] for f in fields if f in owner}
        if len(shared) > 1:
            raise ValueError(f"{qid} shares fields with the forms {sorted(shared)}")
        if shared:
            form = shared.pop()
            first = next(q for q, f in found.items() if f == form)
            if set(fields) != set(_fields(questionnaires[first])):
                raise ValueError(
                    f"{qid} and {first} share some field names but not all: a REDCap field "
                    "belongs to one form, so they need the same fields or none in common"
                )
        else:
            form = qid
        if form in reserved_forms or reserved & set(fields):
            names = ", ".join(f"'{n}'" for n in sorted(reserved_forms | reserved))
            raise ValueError(f"{qid}: the names {names} are reserved")
        found[qid] = form
        owner.update(dict.fromkeys(fields, form))
    return found


def _form_definitions(catalog) -> dict[str, Questionnaire]:
    """Each form and the definition its fields come from (the first of those sharing it)."""
    result: dict[str, Questionnaire] = {}
    for qid, form in forms(catalog).items():
        result.setdefault(form, catalog.questionnaires[qid])
    return result


# Dictionary ----------------------------------------------------------------------------


def _label(text: str) -> str:
    """A choice label: '|' separates choices in REDCap, so it cannot appear in one."""
    return text.replace("|", "/").strip()


def _choices(pairs) -> str:
    return " | ".join(f"{code}, {_label(label)}" for code, label in pairs)


def _codes(item) -> list[tuple[str, str]]:
    if item.type == "yes_no":
        return [("1", item.yes.nb), ("0", item.no.nb)]
    if isinstance(item, Scale):
        ends = {item.min: item.min_label.nb, item.max: item.max_label.nb}
        return [(str(c), f"{c} {ends[c]}" if c in ends else str(c)) for c in item.codes()]
    return [(str(o.code), o.label.nb) for o in item.options]


def _compare(item, op: str, value) -> str | None:
    if isinstance(item, MultipleChoice):
        if op == "eq":
            return f"[{item.id}({value})] = '1'"
        if op == "ne":
            return f"[{item.id}({value})] = '0'"
        if op == "in":
            return "(" + " or ".join(f"[{item.id}({v})] = '1'" for v in value) + ")"
        if op == "not_in":
            return "(" + " and ".join(f"[{item.id}({v})] = '0'" for v in value) + ")"
        return None
    if op == "answered":
        return f"[{item.id}] <> ''"
    if op in ("eq", "ne"):
        return f"[{item.id}] {OPS[op]} '{value}'"
    if op in OPS:  # a number, unquoted, so that REDCap compares numbers
        return f"[{item.id}] {OPS[op]} {value}"
    if op == "in":
        return "(" + " or ".join(f"[{item.id}] = '{v}'" for v in value) + ")"
    if op == "not_in":
        return "(" + " and ".join(f"[{item.id}] <> '{v}'" for v in value) + ")"
    return None  # 'declined': a declined answer is an empty field in REDCap


def branching(definition: Questionnaire, condition: Condition) -> str | None:
    """REDCap branching logic for a display condition, or None when it cannot be said."""
    if condition.item is not None:
        item = definition.items_by_id.get(condition.item)
        return None if item is None else _compare(item, condition.op, condition.value)
    parts = [branching(definition, part) for part in condition.all or condition.any]
    if any(p is None for p in parts):
        return None
    joiner = " and " if condition.all is not None else " or "
    return "(" + joiner.join(parts) + ")" if len(parts) > 1 else parts[0]


def _row(name, form, field_type, label, **extra) -> list[str]:
    values = dict.fromkeys(DICTIONARY_HEADER, "")
    values["Variable / Field Name"] = name
    values["Form Name"] = form
    values["Field Type"] = field_type
    values["Field Label"] = label
    keys = {
        "section": "Section Header",
        "choices": "Choices, Calculations, OR Slider Labels",
        "note": "Field Note",
        "validation": "Text Validation Type OR Show Slider Number",
        "low": "Text Validation Min",
        "high": "Text Validation Max",
        "logic": "Branching Logic (Show field only if...)",
        "required": "Required Field?",
        "align": "Custom Alignment",
        "annotation": "Field Annotation",
    }
    for key, value in extra.items():
        values[keys[key]] = "" if value is None else str(value)
    return [values[h] for h in DICTIONARY_HEADER]


def _item_row(definition: Questionnaire, form: str, item, section: str) -> list[str]:
    extra: dict = {"section": section}
    if not item.skippable and item.not_applicable is None:
        extra["required"] = "y"
    if item.show_if is not None:
        extra["logic"] = branching(definition, item.show_if)
    if item.help is not None:
        extra["note"] = item.help.nb
    if isinstance(item, Integer):
        kind = "text"
        extra.update(validation="integer", low=item.min, high=item.max)
        if item.unit is not None:
            extra["note"] = item.unit.nb
    elif isinstance(item, Date):
        kind = "text"
        extra["validation"] = "date_ymd"
    elif isinstance(item, Text):
        kind = "notes" if item.multiline else "text"
    else:
        kind = "checkbox" if isinstance(item, MultipleChoice) else "radio"
        extra["choices"] = _choices(_codes(item))
        if isinstance(item, Scale):
            extra["align"] = "RH"
    return _row(item.id, form, kind, item.text.nb, **extra)


def _score_row(definition: Questionnaire, form: str, rule) -> list[str]:
    variable = score_variable(definition, rule)
    extra: dict = {"annotation": "@READONLY", "note": variable.description_nb}
    if isinstance(rule, BandsRule):
        kind = "dropdown"
        extra["choices"] = _choices((b.value, b.label.nb) for b in rule.bands)
    elif isinstance(rule, CutoffRule):
        kind = "yesno"
    else:
        kind = "text"
        extra["validation"] = "integer" if variable.type == "integer" else "number"
    return _row(rule.id, form, kind, rule.label.nb, **extra)


def _sections(definition: Questionnaire) -> dict[str, str]:
    """item id -> the title of the page it opens."""
    return {p.items[0]: p.title.nb for p in definition.pages if p.title is not None}


def write_dictionary(stream: TextIO, catalog) -> int:
    """Write the data dictionary CSV; return the number of fields."""
    writer = _writer(stream)
    writer.writerow(DICTIONARY_HEADER)
    sites = _choices((s.id, s.name) for s in catalog.study.sites)
    rows = [
        _row(RECORD_ID, FIRST_FORM, "text", "Studiekode"),
        _row("site", FIRST_FORM, "dropdown", "Sykehus", choices=sites, required="y"),
    ]
    for form, definition in _form_definitions(catalog).items():
        sections = _sections(definition)
        for item in definition.items:
            rows.append(_item_row(definition, form, item, sections.get(item.id, "")))
        rows.extend(_score_row(definition, form, rule) for rule in definition.scores)
    for form, variables in study_forms(catalog.study).items():
        rows.extend(_study_row(form, v) for v in variables)
    writer.writerows(rows)
    return len(rows)


def _study_row(form: str, variable) -> list[str]:
    """A read-only field of the timepoint's own values: set by the export, not entered."""
    extra: dict = {"annotation": "@READONLY", "note": variable.description_nb}
    kind = "yesno" if variable.kind == "derived" else "text"
    return _row(variable.name, form, kind, variable.label_nb, **extra)


def branching_not_expressed(catalog) -> list[str]:
    """`questionnaire.item` for every display condition the dictionary leaves out."""
    return [
        f"{definition.id}.{item.id}"
        for definition in _form_definitions(catalog).values()
        for item in definition.items
        if item.show_if is not None and branching(definition, item.show_if) is None
    ]


def field_name_problems(catalog) -> list[str]:
    """Field and form names that break REDCap's rules or its 26-character recommendation."""
    names = [RECORD_ID, "site"]
    for form, definition in _form_definitions(catalog).items():
        names.append(f"{form}_complete")
        for item in definition.items:
            names.append(item.id)
            if isinstance(item, MultipleChoice):
                names.extend(f"{item.id}___{o.code}" for o in item.options)
        names.extend(s.id for s in definition.scores)
    for form, variables in study_forms(catalog.study).items():
        names.extend(v.name for v in variables)
        names.append(f"{form}_complete")
    form_names = {FIRST_FORM, *forms(catalog).values(), *study_forms(catalog.study)}
    problems = []
    for name in names:
        if not NAME_PATTERN.match(name):
            problems.append(f"{name}: use lower-case letters, digits and _, starting with a letter")
        if len(name) > MAX_LENGTH:
            problems.append(f"{name}: longer than {MAX_LENGTH} characters")
        elif len(name) > RECOMMENDED_LENGTH:
            problems.append(f"{name}: longer than the recommended {RECOMMENDED_LENGTH} characters")
        if name in RESERVED:
            problems.append(f"{name}: reserved by REDCap")
        if name.endswith("_complete") and name[: -len("_complete")] not in form_names:
            problems.append(f"{name}: ends in _complete like a form status field")
    return problems
