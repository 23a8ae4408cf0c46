"""The export model: one record per response, and how its values are written as text.

Pure: no Flask, no SQL. `source.py` reads the database and calls `build_record`, and
`assessment_values` once per participant × timepoint: the receipt code and the study-level
derived values, shared by the records of that timepoint. Contact details are not part of a
record (the source never reads them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from zoneinfo import ZoneInfo

from ..domain.derived import derive_one
from ..domain.model import Questionnaire
from ..domain.paths import effective_answers
from ..domain.protocol import Derived
from ..domain.scoring import Score, ScoreSheet

SUBMITTED = "submitted"
PARTIAL = "partial"  # an in_progress response, exported only on request
PHONE, PAPER = "phone", "paper"  # where the answers came from (ExportRecord.source)
NOT_SCORED = "partial response: not scored until submitted"
LIST_SEPARATOR = "|"


@dataclass(frozen=True)
class ScoreValue:
    """A stored score: its unrounded value, or None with the reason."""

    value: int | float | bool | str | None
    reason: str | None = None


@dataclass(frozen=True)
class AssessmentValues:
    """What belongs to a participant's timepoint rather than to one of its responses.

    receipt_code: set when every questionnaire of the timepoint was submitted.
    derived: {derived id: ScoreValue} for the study's derived values of this timepoint
    (study order), computed at export time from the stored scores; empty elsewhere.
    """

    receipt_code: str | None = None
    derived: Mapping = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ExportRecord:
    """One response with its participant's pseudonymous identity and its assessment."""

    study_code: str
    site: str
    timepoint: str
    target_day: str
    first_day: str
    last_day: str
    questionnaire: str
    definition_version: str
    definition_hash: str
    response_uuid: str
    response_version: int
    status: str  # submitted | partial
    started_at: str
    submitted_at: str | None
    actual_date: str | None  # the Oslo calendar day of submitted_at (paper: filled in on)
    items: Mapping = field(default_factory=dict)  # item id -> value, definition order
    scores: Mapping = field(default_factory=dict)  # score id -> ScoreValue, definition order
    # The same object for every record of one participant × timepoint.
    assessment: AssessmentValues = field(default_factory=AssessmentValues)
    # phone: answered by the participant on a device; paper: a paper form entered by staff.
    source: str = PHONE


@dataclass(frozen=True)
class Filters:
    """What to export. Empty tuples mean every one; dates are Oslo calendar days."""

    timepoints: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    questionnaires: tuple[str, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    include_partial: bool = False
    all_versions: bool = False  # every version of a corrected response, not only the newest


def utc_text(stamp: str | None) -> str | None:
    """Return a stored UTC time as ISO 8601 with a Z (stored times already are)."""
    if stamp is None:
        return None
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_day(stamp: str | None, zone: ZoneInfo) -> str | None:
    """Return the calendar day (in zone) of a stored UTC time, as YYYY-MM-DD."""
    if stamp is None:
        return None
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment.astimezone(zone).date().isoformat()


def day_bounds(first: dt.date | None, last: dt.date | None, zone: ZoneInfo) -> tuple:
    """Return the UTC stamps [start, end) covering whole local days first..last."""

    def start_of(day: dt.date) -> str:
        moment = dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone).astimezone(dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return (
        start_of(first) if first else None,
        start_of(last + dt.timedelta(days=1)) if last else None,
    )


def _why_missing(rule: Derived, stored: Mapping) -> str:
    """Say, per condition whose score is null, why: no submitted response, or its reason."""
    parts = []
    for condition in rule.conditions:
        questionnaire, score = condition.score.split(".")
        if questionnaire not in stored:
            parts.append(f"{questionnaire} not submitted")
        elif score not in stored[questionnaire]:
            parts.append(f"{condition.score} not stored")
        else:
            value, reason = stored[questionnaire][score]
            if value is None:
                parts.append(f"{condition.score}: {reason}" if reason else condition.score)
    return "; ".join(dict.fromkeys(parts))


def derived_values(rules, stored: Mapping) -> dict[str, ScoreValue]:
    """Evaluate derived values from stored scores, as scoring does (domain.derived).

    stored: {questionnaire: {score: (value, reason)}} of the submitted responses of one
    participant × timepoint, as stored; questionnaire scores are never computed again.
    A null value's reason says why each of its scores is null.
    """
    sheets = {
        questionnaire: ScoreSheet(
            questionnaire=questionnaire,
            version="",
            content_hash="",
            scores={sid: Score(sid, value, reason) for sid, (value, reason) in scores.items()},
        )
        for questionnaire, scores in stored.items()
    }
    found = {}
    for rule in rules:
        result = derive_one(rule, sheets)
        if result.value is None:
            detail = _why_missing(rule, stored)
            found[rule.id] = ScoreValue(
                None, f"{result.reason} ({detail})" if detail else result.reason
            )
        else:
            found[rule.id] = ScoreValue(result.value)
    return found


def assessment_values(
    receipt_code: str | None, rules, stored: Mapping | None = None
) -> AssessmentValues:
    """The values of one participant × timepoint: its receipt code and derived values.

    rules: the study's derived values of this timepoint that the export includes.
    """
    derived = derived_values(rules, stored or {}) if rules else {}
    return AssessmentValues(receipt_code, MappingProxyType(derived))


def build_record(
    *,
    participant: Mapping,
    assessment: Mapping,
    response: Mapping,
    answers: Mapping,
    scores: Mapping,
    definition: Questionnaire,
    zone: ZoneInfo,
    values: AssessmentValues | None = None,
) -> ExportRecord:
    """Combine stored rows into a record.

    answers: the current answers ({item: decoded value}); answers to items hidden by a
    display condition are dropped (they are not counted, as in scoring).
    scores: {score id: (value, reason)} as stored; a partial response has none.
    values: the assessment's receipt code and derived values (assessment_values).
    The response's `source` (phone when the row has none) goes with the record; for a paper
    form the actual date is the day it was filled in, not the day it was entered.
    """
    shown = effective_answers(definition, answers)
    items = {item.id: shown.get(item.id) for item in definition.items}
    submitted = response["status"] == "submitted"
    score_values = {}
    for rule in definition.scores:
        if rule.id in scores:
            value, reason = scores[rule.id]
            score_values[rule.id] = ScoreValue(value, reason)
        else:
            score_values[rule.id] = ScoreValue(None, None if submitted else NOT_SCORED)
    source = response.get("source") or PHONE
    actual = local_day(response["submitted_at"], zone) if submitted else None
    if submitted and source == PAPER and response.get("filled_on"):
        actual = response["filled_on"]
    return ExportRecord(
        study_code=participant["study_code"],
        site=participant["site"],
        timepoint=assessment["timepoint"],
        target_day=assessment["target_day"],
        first_day=assessment["first_day"],
        last_day=assessment["last_day"],
        questionnaire=response["questionnaire"],
        definition_version=response["definition_version"],
        definition_hash=response["definition_hash"],
        response_uuid=response["uuid"],
        response_version=int(response["version"]),
        status=SUBMITTED if submitted else PARTIAL,
        started_at=utc_text(response["started_at"]),
        submitted_at=utc_text(response["submitted_at"]) if submitted else None,
        actual_date=actual,
        items=MappingProxyType(items),
        scores=MappingProxyType(score_values),
        assessment=values if values is not None else AssessmentValues(),
        source=source,
    )


def cell(value) -> str:
    """Write one value as CSV text: codes and words as they are, booleans 1/0, null empty.

    Floats use repr (shortest text that reads back to the same float); a list of codes
    (a multiple-choice answer) is joined with '|'.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(cell(v) for v in value)
    return str(value)
