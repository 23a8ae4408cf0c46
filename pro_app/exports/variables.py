"""Export variables, from the definitions: names, labels, types, units, codes and rules.

Pure: no Flask, no SQL. Item ids and score ids are the column names, as the contract
fixes them. A multiple-choice item keeps its own column (the chosen codes joined with
'|', or 'declined' / 'not_applicable') and adds one 0/1 column per option,
`<item>___<code>` (empty when the item has no answer).

Besides the questionnaires' variables, each participant × timepoint has the receipt code
(`receipt_code`, kind `assessment`) and the study's derived values (`<id>`, kind `derived`,
with `<id>_reason`, kind `reason`: why the value is empty), computed at export time. Each
response also says where its answers came from: `<questionnaire>_source` (kind `response`),
`phone` or `paper`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.answers import DECLINED, NOT_APPLICABLE
from ..domain.derived import inputs
from ..domain.model import (
    BandsRule,
    CountRule,
    CutoffRule,
    Date,
    Integer,
    MeanRule,
    MultipleChoice,
    PercentRule,
    Questionnaire,
    Scale,
    SumRule,
    Text,
    YesNo,
)

DECLINED_LABEL = ("Vil ikke svare", "Declined to answer")
CHOSEN = (("1", "Valgt", "Selected"), ("0", "Ikke valgt", "Not selected"))
TRUE_FALSE = (("1", "Ja", "Yes"), ("0", "Nei", "No"))
OPS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "eq": "=", "ne": "≠", "in": "in"}


@dataclass(frozen=True)
class Variable:
    """One export column: an item, an option of one, a score, or a timepoint's own value."""

    name: str
    questionnaire: str  # empty for the assessment's own variables
    kind: str  # item | score | assessment | derived | reason
    label_nb: str
    label_en: str
    type: str  # integer, decimal, text, date, boolean, category
    source: str  # the item or score id the value comes from
    option: int | None = None  # for `<item>___<code>`: the option's code
    unit_nb: str = ""
    unit_en: str = ""
    codes: tuple[tuple[str, str, str], ...] = ()  # (code, label nb, label en)
    rule: str = ""
    description_nb: str = ""
    description_en: str = ""
    definition_version: str = ""
    definition_hash: str = ""


def study_order(study) -> tuple[str, ...]:
    """Return the study's questionnaire ids in protocol order (first use, timepoint order)."""
    seen: dict[str, None] = {}
    for timepoint in study.timepoints:
        for questionnaire in timepoint.questionnaires:
            seen.setdefault(questionnaire)
    return tuple(seen)


def catalog_order(catalog) -> tuple[str, ...]:
    """The study's questionnaires in protocol order, then any other definitions by id."""
    used = study_order(catalog.study)
    return used + tuple(sorted(q for q in catalog.questionnaires if q not in used))


def _non_answers(item) -> tuple[tuple[str, str, str], ...]:
    extra = []
    if item.not_applicable is not None:
        extra.append((NOT_APPLICABLE, item.not_applicable.nb, item.not_applicable.en))
    if item.skippable:
        extra.append((DECLINED, *DECLINED_LABEL))
    return tuple(extra)


def _item_codes(item) -> tuple[tuple[str, str, str], ...]:
    if isinstance(item, YesNo):
        return (("1", item.yes.nb, item.yes.en), ("0", item.no.nb, item.no.en))
    if isinstance(item, Scale):
        ends = {item.min: item.min_label, item.max: item.max_label}
        return tuple(
            (str(c), ends[c].nb if c in ends else "", ends[c].en if c in ends else "")
            for c in item.codes()
        )
    options = getattr(item, "options", ())
    return tuple((str(o.code), o.label.nb, o.label.en) for o in options)


def _item_type(item) -> str:
    if isinstance(item, Date):
        return "date"
    if isinstance(item, Text | MultipleChoice):
        return "text"
    return "integer"


def item_variables(definition: Questionnaire, item) -> list[Variable]:
    """The item's own column, then (multiple choice) one 0/1 column per option."""
    label = item.short or item.text
    unit = item.unit if isinstance(item, Integer) and item.unit else None
    common = dict(
        questionnaire=definition.id,
        kind="item",
        source=item.id,
        definition_version=definition.version,
        definition_hash=definition.content_hash,
    )
    found = [
        Variable(
            name=item.id,
            label_nb=label.nb,
            label_en=label.en,
            type=_item_type(item),
            unit_nb=unit.nb if unit else "",
            unit_en=unit.en if unit else "",
            codes=_item_codes(item) + _non_answers(item),
            **common,
        )
    ]
    if isinstance(item, MultipleChoice):
        for option in item.options:
            found.append(
                Variable(
                    name=f"{item.id}___{option.code}",
                    label_nb=f"{label.nb}: {option.label.nb}",
                    label_en=f"{label.en}: {option.label.en}",
                    type="boolean",
                    option=option.code,
                    codes=CHOSEN,
                    **common,
                )
            )
    return found


def _missing_rule(rule) -> str:
    parts = []
    if rule.min_answered is not None:
        parts.append(f"at least {rule.min_answered} answered")
    if rule.max_missing is not None:
        parts.append(f"at most {rule.max_missing} missing")
    if not parts:
        parts.append("null if any item is missing")
    if getattr(rule, "prorate", False):
        parts.append("prorated to all items when some are missing")
    return "; ".join(parts)


def rule_text(rule) -> str:
    """A one-line, English statement of how a score is computed."""
    if isinstance(rule, BandsRule):
        bands = ", ".join(
            f"≤ {b.upto!r} {b.value}" if b.upto is not None else f"else {b.value}"
            for b in rule.bands
        )
        return f"band of {rule.source}: {bands}"
    if isinstance(rule, CutoffRule):
        return f"{rule.source} {OPS[rule.op]} {rule.value!r} (1 = true, 0 = false)"
    items = ", ".join(rule.items)
    if isinstance(rule, MeanRule):
        head = f"mean of answered items ({items})"
    elif isinstance(rule, PercentRule):
        head = f"sum of (code − lowest code) / most possible × 100 over answered items ({items})"
    elif isinstance(rule, CountRule):
        head = f"number of items with answer {OPS[rule.where.op]} {rule.where.value} ({items})"
    else:
        head = f"sum of items ({items})"
    return f"{head}; {_missing_rule(rule)}"


def _score_type(rule) -> str:
    if isinstance(rule, BandsRule):
        return "category"
    if isinstance(rule, CutoffRule):
        return "boolean"
    if isinstance(rule, SumRule | CountRule) and not rule.prorate:
        return "integer"
    return "decimal"


def score_variable(definition: Questionnaire, rule) -> Variable:
    if isinstance(rule, BandsRule):
        codes = tuple((b.value, b.label.nb, b.label.en) for b in rule.bands)
    elif isinstance(rule, CutoffRule):
        codes = TRUE_FALSE
    else:
        codes = ()
    percent = "%" if isinstance(rule, PercentRule) else ""
    return Variable(
        name=rule.id,
        questionnaire=definition.id,
        kind="score",
        label_nb=rule.label.nb,
        label_en=rule.label.en,
        type=_score_type(rule),
        source=rule.id,
        unit_nb=percent,
        unit_en=percent,
        codes=codes,
        rule=rule_text(rule),
        description_nb=rule.description.nb if rule.description else "",
        description_en=rule.description.en if rule.description else "",
        definition_version=definition.version,
        definition_hash=definition.content_hash,
    )


def variables_for(definition: Questionnaire) -> tuple[Variable, ...]:
    """Every export variable of a definition: items in definition order, then scores."""
    found: list[Variable] = []
    for item in definition.items:
        found.extend(item_variables(definition, item))
    found.extend(score_variable(definition, rule) for rule in definition.scores)
    return tuple(found)


SOURCE_CODES = (
    ("phone", "Telefon (deltakeren svarte selv)", "Phone (answered by the participant)"),
    ("paper", "Papirskjema registrert av studieteamet", "Paper form entered by the study team"),
)


def source_variable(definition: Questionnaire) -> Variable:
    """`<questionnaire>_source`: phone, or a paper form entered by staff."""
    return Variable(
        name=f"{definition.id}_source",
        questionnaire=definition.id,
        kind="response",
        label_nb="Hvor svarene kom fra",
        label_en="Where the answers came from",
        type="text",
        source="source",
        codes=SOURCE_CODES,
        rule=(
            "phone: the participant answered on a phone or computer; paper: a paper form "
            "entered by staff (actual_date is then the day the form was filled in)"
        ),
        definition_version=definition.version,
        definition_hash=definition.content_hash,
    )


RECEIPT_CODE = "receipt_code"
REASON_SUFFIX = "_reason"
CONDITION_TEXT = {"any": "true if any holds", "all": "true if all hold"}


def derived_rules(study, questionnaires=()) -> tuple:
    """The study's derived values in an export of these questionnaires (all when none):
    those that read at least one of them."""
    chosen = set(questionnaires)
    return tuple(rule for rule in study.derived if not chosen or inputs(rule) & chosen)


def derived_rule_text(rule) -> str:
    """A one-line, English statement of how a derived value is computed."""
    conditions = ", ".join(f"{c.score} {OPS[c.op]} {c.value:g}" for c in rule.conditions)
    return (
        f"at {rule.timepoint}: {conditions}; {CONDITION_TEXT[rule.method]} "
        "(1 = true, 0 = false); a condition whose score is null is left out, null when all "
        "are; from the stored scores of the submitted responses, at export time"
    )


def receipt_variable() -> Variable:
    return Variable(
        name=RECEIPT_CODE,
        questionnaire="",
        kind="assessment",
        label_nb="Kvitteringskode for tidspunktet",
        label_en="Receipt code of the timepoint",
        type="text",
        source=RECEIPT_CODE,
        rule="set when every questionnaire of the timepoint is submitted",
    )


def derived_variables(study, rule) -> tuple[Variable, Variable]:
    """A derived value's column (boolean 1/0) and its reason column (why it is empty)."""
    common = dict(questionnaire="", source=rule.id, definition_hash=study.content_hash)
    value = Variable(
        name=rule.id,
        kind="derived",
        label_nb=rule.label.nb,
        label_en=rule.label.en,
        type="boolean",
        codes=TRUE_FALSE,
        rule=derived_rule_text(rule),
        description_nb=rule.description.nb if rule.description else "",
        description_en=rule.description.en if rule.description else "",
        **common,
    )
    reason = Variable(
        name=f"{rule.id}{REASON_SUFFIX}",
        kind="reason",
        label_nb=f"Hvorfor {rule.id} mangler",
        label_en=f"Why {rule.id} is missing",
        type="text",
        rule=f"empty unless {rule.id} is null at {rule.timepoint}",
        **common,
    )
    return value, reason


def assessment_variables(study, questionnaires=()) -> tuple[Variable, ...]:
    """The receipt code, then each derived value with its reason (study order)."""
    found = [receipt_variable()]
    for rule in derived_rules(study, questionnaires):
        found.extend(derived_variables(study, rule))
    return tuple(found)


def value_of(variable: Variable, record):
    """Return the variable's value in a record (None when missing)."""
    if variable.kind == "assessment":
        return record.assessment.receipt_code
    if variable.kind in ("derived", "reason"):
        result = record.assessment.derived.get(variable.source)
        if result is None:
            return None
        return result.value if variable.kind == "derived" else result.reason
    if variable.kind == "score":
        result = record.scores.get(variable.source)
        return None if result is None else result.value
    value = record.items.get(variable.source)
    if variable.option is None:
        return value
    if isinstance(value, list):
        return 1 if variable.option in value else 0
    return None  # missing, declined or not applicable: the marker is in the item's column
