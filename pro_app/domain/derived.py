"""Study-level derived values that combine scores across questionnaires."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from types import MappingProxyType

from .protocol import Derived, Study
from .scoring import Score, ScoreSheet

_OPS = MappingProxyType(
    {
        "gt": operator.gt,
        "ge": operator.ge,
        "lt": operator.lt,
        "le": operator.le,
        "eq": operator.eq,
        "ne": operator.ne,
    }
)


def inputs(rule: Derived) -> set[str]:
    """Return the questionnaire ids a derived value reads."""
    return {c.score.split(".")[0] for c in rule.conditions}


def derive_one(rule: Derived, sheets: Mapping[str, ScoreSheet]) -> Score:
    """Evaluate one derived value from the score sheets of its timepoint."""
    results = []
    absent = []
    for cond in rule.conditions:
        qid, sid = cond.score.split(".")
        sheet = sheets.get(qid)
        value = sheet.scores[sid].value if sheet is not None and sid in sheet.scores else None
        if value is None:
            absent.append(cond.score)
            continue
        results.append(_OPS[cond.op](value, cond.value))
    if not results:
        return Score(rule.id, None, f"{' and '.join(absent)} missing")
    combine = any if rule.method == "any" else all
    return Score(rule.id, combine(results))


def derive(study: Study, sheets: Mapping[str, ScoreSheet]) -> dict[str, Score]:
    """Evaluate every derived value whose inputs include a questionnaire in sheets."""
    return {
        rule.id: derive_one(rule, sheets) for rule in study.derived if inputs(rule) & set(sheets)
    }
