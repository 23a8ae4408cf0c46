"""FHIR R4 JSON: a Questionnaire per definition and a Bundle of QuestionnaireResponses.

Pure (no Flask, no SQL, standard library only); the tests validate the output with
fhir.resources' R4B models. Shapes (DESIGN.md, "FHIR shape"):

- `Questionnaire.url` = `<base>/fhir/Questionnaire/<definition id>`, `version` = the
  definition's version. The logical `id` is the definition id with `_` written as `-`
  (a FHIR id allows only letters, digits, `-` and `.`); bundle entries use `urn:uuid:`
  full URLs (uuid5 of `url|version` for a Questionnaire, the response UUID for a response).
- Texts are Norwegian (`language` nb) with the English text in the standard `translation`
  extension on the primitive (`_text`, `_title`, `_display`).
- Item types: single choice, scale and yes/no are `choice` with `answerOption` codings
  (the stored code, its label as display; yes/no keeps its own labels and codes 1/0);
  multiple choice is `choice` with `repeats`; integer, text (`string` or `text`), date.
  `required` = not skippable and no "not applicable" choice (as on the participant pages).
  Display conditions become `enableWhen` where FHIR can say the same thing; a condition on
  a coded item compares codings, so `gt`/`in`/... are spelled out as "= one of the codes".
- Each QuestionnaireResponse: `id` = the response UUID, `meta.versionId` = the response
  version, `identifier` = (`<base>/fhir/response-id`, UUID), `questionnaire` =
  `url|version` (the version the response was answered on), `subject.identifier` =
  (`<base>/fhir/study-code`, study code), `status` completed (submitted) or in-progress
  (partial), `authored` = the submission time (the start time of a partial response), and
  the timepoint and site as extensions. Unanswered (missing or hidden) items are left out;
  declined and not-applicable items have no answer and the data-absent-reason extension.
- Scores are **derived items**: each score rule is a `readOnly` item of the Questionnaire
  (after the questions; integer, decimal, choice for bands, boolean for cut-offs) and a
  normal item with its answer in the response. A null score has no answer, the
  data-absent-reason `unknown` and its reason in `<base>/fhir/StructureDefinition/score-reason`.
  A partial response has no score items (it is not scored).
"""

from __future__ import annotations

import json
import uuid

from ...domain.answers import DECLINED, NOT_APPLICABLE
from ...domain.model import (
    Condition,
    Date,
    Integer,
    MultipleChoice,
    Questionnaire,
    Text,
)
from ..model import SUBMITTED
from ..variables import catalog_order, score_variable

TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
ABSENT_CODES = {DECLINED: "asked-declined", NOT_APPLICABLE: "not-applicable"}
STATUSES = {SUBMITTED: "completed", "partial": "in-progress"}
SCORE_TYPES = {"integer": "integer", "decimal": "decimal", "category": "choice"}
COMPARATORS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_TESTS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
}


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def questionnaire_url(base_url: str, questionnaire_id: str) -> str:
    return f"{_base(base_url)}/fhir/Questionnaire/{questionnaire_id}"


def code_system(base_url: str, questionnaire_id: str, item_id: str) -> str:
    """The system of an item's (or a band score's) codes."""
    return f"{_base(base_url)}/fhir/CodeSystem/{questionnaire_id}-{item_id}"


def fhir_id(text: str) -> str:
    """A FHIR logical id ([A-Za-z0-9-.]{1,64}) from a definition id."""
    return text.replace("_", "-")


def dumps(resource: dict) -> str:
    """The resource as deterministic JSON text (sorted keys, UTF-8 characters, newline)."""
    return json.dumps(resource, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _translated(local) -> dict:
    """The `_element` of a Norwegian text: the English translation extension."""
    return {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": "en"},
                    {"url": "content", "valueString": local.en},
                ],
            }
        ]
    }


def _coding(system: str, code, label=None) -> dict:
    coding = {"system": system, "code": str(code), "display": label.nb if label else str(code)}
    if label is not None:
        coding["_display"] = _translated(label)
    return coding


def _options(item) -> list[tuple[int, object]]:
    """(code, label or None) of a coded item, in definition order; [] for others."""
    if item.type == "yes_no":
        return [(1, item.yes), (0, item.no)]
    if item.type == "scale":
        ends = {item.min: item.min_label, item.max: item.max_label}
        return [(code, ends.get(code)) for code in item.codes()]
    return [(o.code, o.label) for o in getattr(item, "options", ())]


# Display conditions -> enableWhen ------------------------------------------------------


def _when(definition: Questionnaire, base_url: str, item_id: str, op: str, value) -> dict:
    target = definition.item(item_id)
    when: dict = {"question": item_id, "operator": op}
    if isinstance(target, Integer):
        when["answerInteger"] = value
    else:
        when["answerCoding"] = {
            "system": code_system(base_url, definition.id, item_id),
            "code": str(value),
        }
    return when


def _simple(definition: Questionnaire, base_url: str, condition: Condition):
    """(behavior, [enableWhen]) for one comparison, or None when FHIR cannot say it."""
    target = definition.items_by_id.get(condition.item)
    if target is None or condition.op == "declined":
        return None  # a declined answer is absent in FHIR: nothing to compare
    if condition.op == "answered":
        return "all", [{"question": condition.item, "operator": "exists", "answerBoolean": True}]

    def when(op, value):
        return _when(definition, base_url, condition.item, op, value)

    op, value = condition.op, condition.value
    if isinstance(target, Integer):
        if op in COMPARATORS:
            return "all", [when(COMPARATORS[op], value)]
        if op == "in":
            return "any", [when("=", v) for v in value]
        return "all", [when("!=", v) for v in value]
    if isinstance(target, MultipleChoice):  # "=" is true when any chosen code equals
        if op == "eq":
            return "all", [when("=", value)]
        if op == "ne":
            return "all", [when("!=", value)]
        if op == "in":
            return "any", [when("=", v) for v in value]
        if op == "not_in":
            return "all", [when("!=", v) for v in value]
        return None
    if not target.codes() or op not in _TESTS:
        return None
    # One code: spell the comparison out as "equals one of the codes that meet it".
    codes = [c for c in target.codes() if _TESTS[op](c, value)]
    if not codes:
        return None
    return "any", [when("=", c) for c in codes]


def enable_when(definition: Questionnaire, base_url: str, condition: Condition):
    """(enableBehavior, [enableWhen]) for a display condition, or None when not expressible.

    FHIR has one level: all of or any of a list of comparisons; a nested mix is None.
    """
    if condition.item is not None:
        return _simple(definition, base_url, condition)
    behavior = "all" if condition.all is not None else "any"
    whens = []
    for part in condition.all or condition.any:
        found = enable_when(definition, base_url, part)
        if found is None:
            return None
        part_behavior, part_whens = found
        if len(part_whens) > 1 and part_behavior != behavior:
            return None
        whens.extend(part_whens)
    return behavior, whens


def conditions_not_expressed(catalog, base_url: str = "https://example.org") -> list[str]:
    """`questionnaire.item` for every display condition left out of the Questionnaires."""
    missing = []
    for qid in catalog_order(catalog):
        definition = catalog.questionnaires[qid]
        for item in definition.items:
            if item.show_if is not None and enable_when(definition, base_url, item.show_if) is None:
                missing.append(f"{qid}.{item.id}")
    return missing


# Questionnaires ------------------------------------------------------------------------


def _question(definition: Questionnaire, item, base_url: str) -> dict:
    entry: dict = {
        "linkId": item.id,
        "text": item.text.nb,
        "_text": _translated(item.text),
        "required": not item.skippable and item.not_applicable is None,
    }
    if isinstance(item, Integer):
        entry["type"] = "integer"
        entry["extension"] = [
            {"url": MIN_VALUE, "valueInteger": item.min},
            {"url": MAX_VALUE, "valueInteger": item.max},
        ]
        if item.unit is not None:
            entry["extension"].append({"url": UNIT, "valueCoding": {"display": item.unit.nb}})
    elif isinstance(item, Text):
        entry["type"] = "text" if item.multiline else "string"
        entry["maxLength"] = item.max_length
    elif isinstance(item, Date):
        entry["type"] = "date"
    else:
        system = code_system(base_url, definition.id, item.id)
        entry["type"] = "choice"
        entry["repeats"] = isinstance(item, MultipleChoice)
        entry["answerOption"] = [
            {"valueCoding": _coding(system, code, label)} for code, label in _options(item)
        ]
    if item.show_if is not None:
        found = enable_when(definition, base_url, item.show_if)
        if found is not None:
            behavior, whens = found
            entry["enableWhen"] = whens
            if len(whens) > 1:
                entry["enableBehavior"] = behavior
    return entry


def _score_item(definition: Questionnaire, rule, base_url: str) -> dict:
    variable = score_variable(definition, rule)
    entry: dict = {
        "linkId": rule.id,
        "text": rule.label.nb,
        "_text": _translated(rule.label),
        "readOnly": True,
        "required": False,
        "type": SCORE_TYPES.get(variable.type, "boolean"),
    }
    if variable.type == "category":
        system = code_system(base_url, definition.id, rule.id)
        entry["answerOption"] = [
            {"valueCoding": _coding(system, band.value, band.label)} for band in rule.bands
        ]
    return entry


def questionnaire(definition: Questionnaire, base_url: str) -> dict:
    """One definition as an R4 Questionnaire."""
    title = definition.title
    resource = {
        "resourceType": "Questionnaire",
        "id": fhir_id(definition.id),
        "language": "nb",
        "url": questionnaire_url(base_url, definition.id),
        "version": definition.version,
        "name": definition.id[0].upper() + definition.id[1:],
        "title": title.nb,
        "_title": _translated(title),
        "status": "active",
        "subjectType": ["Patient"],
        "description": definition.instructions.nb,
        "_description": _translated(definition.instructions),
        "copyright": definition.licence.owner,
        "item": [_question(definition, item, base_url) for item in definition.items]
        + [_score_item(definition, rule, base_url) for rule in definition.scores],
    }
    return resource


def _canonical_uuid(url: str, version: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{url}|{version}"))


def questionnaires_bundle(catalog, base_url: str) -> dict:
    """A collection Bundle with one Questionnaire per definition (protocol order)."""
    entries = []
    for qid in catalog_order(catalog):
        resource = questionnaire(catalog.questionnaires[qid], base_url)
        full_url = f"urn:uuid:{_canonical_uuid(resource['url'], resource['version'])}"
        entries.append({"fullUrl": full_url, "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
