"""FHIR QuestionnaireResponses: answers, absent answers and derived score items.

Extensions on each response: the timepoint, the site and the source of the answers
(`phone`, or `paper` for a form entered by staff, then also the day it was filled in).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from ...domain.model import (
    Date,
    Integer,
    Questionnaire,
    Text,
)
from ..model import PAPER, SUBMITTED, ExportRecord
from ..variables import score_variable
from .questionnaires import (
    ABSENT_CODES,
    DATA_ABSENT,
    STATUSES,
    _base,
    _coding,
    _options,
    code_system,
    dumps,
    questionnaire_url,
)


def _absent(code: str) -> dict:
    return {"url": DATA_ABSENT, "valueCode": code}


def _answers(definition: Questionnaire, item, value, base_url: str) -> list[dict]:
    if isinstance(item, Integer):
        return [{"valueInteger": value}]
    if isinstance(item, Text):
        return [{"valueString": value}]
    if isinstance(item, Date):
        return [{"valueDate": value}]
    system = code_system(base_url, definition.id, item.id)
    labels = dict(_options(item))
    values = value if isinstance(value, list) else [value]
    return [{"valueCoding": _coding(system, code, labels.get(code))} for code in values]


def _answer_item(definition: Questionnaire, item, value, base_url: str) -> dict | None:
    if value is None or value == []:
        return None  # missing, or hidden by a display condition: no item
    entry: dict = {"linkId": item.id, "text": item.text.nb}
    if isinstance(value, str) and value in ABSENT_CODES:
        entry["extension"] = [_absent(ABSENT_CODES[value])]
    else:
        entry["answer"] = _answers(definition, item, value, base_url)
    return entry


def _score_answer(definition: Questionnaire, rule, score, base_url: str) -> dict:
    entry: dict = {"linkId": rule.id, "text": rule.label.nb}
    value = None if score is None else score.value
    if value is None:
        entry["extension"] = [_absent("unknown")]
        if score is not None and score.reason:
            url = f"{_base(base_url)}/fhir/StructureDefinition/score-reason"
            entry["extension"].append({"url": url, "valueString": score.reason})
        return entry
    kind = score_variable(definition, rule).type
    if kind == "category":
        label = next((b.label for b in rule.bands if b.value == value), None)
        system = code_system(base_url, definition.id, rule.id)
        answer = {"valueCoding": _coding(system, value, label)}
    elif kind == "boolean":
        answer = {"valueBoolean": bool(value)}
    elif kind == "integer" and float(value).is_integer():
        answer = {"valueInteger": int(value)}
    else:
        answer = {"valueDecimal": float(value)}
    entry["answer"] = [answer]
    return entry


def questionnaire_response(record: ExportRecord, definition: Questionnaire, base_url: str) -> dict:
    """One export record as an R4 QuestionnaireResponse."""
    base = _base(base_url)
    submitted = record.status == SUBMITTED
    items = []
    for item in definition.items:
        entry = _answer_item(definition, item, record.items.get(item.id), base_url)
        if entry is not None:
            items.append(entry)
    if submitted:
        for rule in definition.scores:
            items.append(_score_answer(definition, rule, record.scores.get(rule.id), base_url))
    url = questionnaire_url(base_url, record.questionnaire)
    resource = {
        "resourceType": "QuestionnaireResponse",
        "id": record.response_uuid,
        "meta": {"versionId": str(record.response_version)},
        "language": "nb",
        "extension": [
            {"url": f"{base}/fhir/StructureDefinition/timepoint", "valueCode": record.timepoint},
            {"url": f"{base}/fhir/StructureDefinition/site", "valueCode": record.site},
            {"url": f"{base}/fhir/StructureDefinition/source", "valueCode": record.source},
        ],
        "identifier": {"system": f"{base}/fhir/response-id", "value": record.response_uuid},
        "questionnaire": f"{url}|{record.definition_version}",
        "status": STATUSES[record.status],
        "subject": {
            "identifier": {"system": f"{base}/fhir/study-code", "value": record.study_code}
        },
        "authored": record.submitted_at if submitted else record.started_at,
    }
    if record.source == PAPER and record.actual_date:
        resource["extension"].append(
            {"url": f"{base}/fhir/StructureDefinition/filled-on", "valueDate": record.actual_date}
        )
    if items:
        resource["item"] = items
    return resource


def response_entry(record: ExportRecord, catalog, base_url: str) -> dict:
    """One Bundle entry: the record's QuestionnaireResponse under its urn:uuid full URL."""
    definition = catalog.questionnaires[record.questionnaire]
    return {
        "fullUrl": f"urn:uuid:{record.response_uuid}",
        "resource": questionnaire_response(record, definition, base_url),
    }


def _bundle(entries: list) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def responses_bundle(records: Iterable[ExportRecord], catalog, base_url: str) -> dict:
    """A collection Bundle of QuestionnaireResponses, in the order of the records."""
    return _bundle([response_entry(record, catalog, base_url) for record in records])


# The entry list is a member of the Bundle (indent level 1) and each entry an element of
# the list (level 2); dumps() indents by 2 spaces a level.
_LIST_INDENT = " " * 2
_ENTRY_INDENT = " " * 4


def write_responses_bundle(
    stream: TextIO, records: Iterable[ExportRecord], catalog, base_url: str
) -> int:
    """Write dumps(responses_bundle(...)) entry by entry; return the number of entries.

    The same bytes as the whole Bundle through dumps(), holding one entry at a time: the
    text around the entries is dumps() of a Bundle without entries, cut at its empty list,
    and each entry is dumps() of the entry indented to its depth (JSON text has no raw
    newline inside a string, so indenting line by line is safe).
    """
    empty = '"entry": []'
    head, tail = dumps(_bundle([])).split(empty, 1)
    stream.write(head + empty[:-1])
    count = 0
    for record in records:
        text = dumps(response_entry(record, catalog, base_url)).rstrip("\n")
        stream.write(",\n" if count else "\n")
        stream.write(_ENTRY_INDENT + text.replace("\n", "\n" + _ENTRY_INDENT))
        count += 1
    stream.write(f"\n{_LIST_INDENT}]" if count else "]")
    stream.write(tail)
    return count
