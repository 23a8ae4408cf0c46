"""Score a questionnaire: pure functions from definition and answers to scores with reasons."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .answers import DECLINED, NOT_APPLICABLE, number
from .conditions import compare, holds
from .model import (
    BandsRule,
    CountRule,
    CutoffRule,
    MeanRule,
    PercentRule,
    Questionnaire,
    SumRule,
)
from .paths import effective_answers

_CUTOFF = MappingProxyType(
    {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}
)


@dataclass(frozen=True)
class Score:
    """One score: its unrounded value, or None with the reason it could not be computed."""

    id: str
    value: int | float | bool | str | None
    reason: str | None = None


@dataclass(frozen=True)
class ScoreSheet:
    """Every score of one response, and the definition they were computed from."""

    questionnaire: str
    version: str
    content_hash: str
    scores: Mapping[str, Score]
    alerts: tuple[str, ...] = ()

    def values(self) -> dict:
        """Return {score id: value}."""
        return {k: s.value for k, s in self.scores.items()}

    def notes(self) -> dict:
        """Return {score id: reason} for the scores that are null."""
        return {k: s.reason for k, s in self.scores.items() if s.value is None}


@dataclass(frozen=True)
class _Tally:
    """What was answered among the items a rule uses."""

    applicable: int
    values: dict
    declined: int
    not_applicable: int

    @property
    def answered(self) -> int:
        return len(self.values)

    @property
    def missing(self) -> int:
        return self.applicable - self.answered

    def describe(self) -> str:
        parts = []
        unanswered = self.missing - self.declined - self.not_applicable
        if self.declined:
            parts.append(f"{self.declined} declined")
        if self.not_applicable:
            parts.append(f"{self.not_applicable} not applicable")
        if unanswered and parts:
            parts.append(f"{unanswered} unanswered")
        detail = f" ({', '.join(parts)})" if parts else ""
        return f"{self.answered} of {self.applicable} items answered{detail}"


def _tally(rule, answers: Mapping) -> _Tally:
    listed = [i for i in rule.items if i in answers]  # items on the participant's path
    values = {i: number(answers[i]) for i in listed if number(answers[i]) is not None}
    declined = sum(1 for i in listed if answers[i] == DECLINED)
    not_applicable = sum(1 for i in listed if answers[i] == NOT_APPLICABLE)
    return _Tally(len(listed), values, declined, not_applicable)


def _shortfall(rule, tally: _Tally) -> str | None:
    """Return why the rule cannot be computed from these answers, or None."""
    min_answered, max_missing = rule.min_answered, rule.max_missing
    if min_answered is None and max_missing is None:
        max_missing = 0  # the default: every item is needed
    if tally.applicable == 0:
        return "none of its items were asked"
    if min_answered is not None and tally.answered < min_answered:
        return f"{tally.describe()}; at least {min_answered} needed"
    if max_missing is not None and tally.missing > max_missing:
        allowed = "none may be missing" if max_missing == 0 else f"at most {max_missing} missing"
        return f"{tally.describe()}; {allowed}"
    if tally.answered == 0:
        return f"{tally.describe()}; nothing to score"
    return None


def _item_rule(rule, definition: Questionnaire, answers: Mapping) -> Score:
    tally = _tally(rule, answers)
    reason = _shortfall(rule, tally)
    if reason:
        return Score(rule.id, None, reason)
    values = tally.values
    if isinstance(rule, MeanRule):
        return Score(rule.id, sum(values.values()) / tally.answered)
    if isinstance(rule, PercentRule):
        items = definition.items_by_id
        spans = {i: items[i].code_range() for i in values}
        got = sum(v - spans[i][0] for i, v in values.items())
        most = sum(spans[i][1] - spans[i][0] for i in values)
        return Score(rule.id, got * 100 / most)  # not got / most * 100: 10/50*100 != 20
    if isinstance(rule, CountRule):
        total = sum(1 for v in values.values() if compare(rule.where.op, v, rule.where.value))
    else:
        total = sum(values.values())
    if rule.prorate and tally.missing:
        return Score(rule.id, total * tally.applicable / tally.answered)
    return Score(rule.id, total)


def _source_rule(rule, done: Mapping[str, Score]) -> Score:
    source = done[rule.source]
    if source.value is None:
        return Score(rule.id, None, f"{rule.source} is missing")
    if isinstance(rule, CutoffRule):
        return Score(rule.id, _CUTOFF[rule.op](source.value, rule.value))
    for band in rule.bands:
        if band.upto is None or source.value <= band.upto:
            return Score(rule.id, band.value)
    return Score(rule.id, None, f"{rule.source} = {source.value} is above every band")


def score(definition: Questionnaire, answers: Mapping) -> ScoreSheet:
    """Compute every score and alert of a definition from one response's answers."""
    on_path = effective_answers(definition, answers)
    done: dict[str, Score] = {}
    for rule in definition.scores:
        if isinstance(rule, SumRule | MeanRule | PercentRule | CountRule):
            done[rule.id] = _item_rule(rule, definition, on_path)
        elif isinstance(rule, BandsRule | CutoffRule):
            done[rule.id] = _source_rule(rule, done)
    alerts = tuple(a.id for a in definition.alerts if holds(a.when, on_path))
    return ScoreSheet(
        questionnaire=definition.id,
        version=definition.version,
        content_hash=definition.content_hash,
        scores=MappingProxyType(done),
        alerts=alerts,
    )
