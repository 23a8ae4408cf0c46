"""Strict models of a study protocol: sites, timepoints, windows, derived values, reminders."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StrictBool, StringConstraints, field_validator

from .model import CompareOp, Identifier, LocalText, NonEmpty, Strict

SiteId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{1,7}$")]


class Site(Strict):
    id: SiteId
    name: NonEmpty
    contact: LocalText | None = None  # how participants reach the study team at this site


class Window(Strict):
    """Whole calendar days before and after the target day on which answers are accepted."""

    before: int = Field(ge=0)
    after: int = Field(ge=0)


class Timepoint(Strict):
    """One assessment in the schedule, anchored on the enrolment date or on day 0."""

    id: Identifier
    label: LocalText
    anchor: Literal["day0", "enrolment"] = "day0"
    day: int
    window: Window | None = None
    ends_before_day0: StrictBool = False
    can_be_late: StrictBool = True
    questionnaires: tuple[Identifier, ...] = Field(min_length=1)
    reminder_days: tuple[int, ...] | None = None


class Visit(Strict):
    id: Identifier
    label: LocalText
    day: int


class ScoreCondition(Strict):
    """A comparison on a score, named as '<questionnaire>.<score>'."""

    score: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
    op: CompareOp
    value: float


class Derived(Strict):
    """A study-level value combining scores of several questionnaires.

    method any: true when a condition holds; all: true when every one holds. Conditions
    whose score is null are left out; the value is null only when all are null.
    """

    id: Identifier
    label: LocalText
    description: LocalText | None = None
    timepoint: Identifier
    method: Literal["any", "all"]
    conditions: tuple[ScoreCondition, ...] = Field(min_length=1)


class QuietHours(Strict):
    start: dt.time
    end: dt.time


class Reminders(Strict):
    """Reminder steps in days after a window opens, never in quiet hours (local time)."""

    after_days: tuple[int, ...] = ()
    quiet_hours: QuietHours = QuietHours(start=dt.time(21, 0), end=dt.time(9, 0))


class MessageText(Strict):
    """One message in both languages; {link}, {last_day} and {contact} are filled in."""

    subject: LocalText
    body: LocalText
    sms: LocalText


class Messages(Strict):
    """Texts of invitations and reminders. They never name a diagnosis, drug or arm."""

    invite: MessageText
    reminder: MessageText


class ScoringOverride(Strict):
    """A study's own missing-data setting for one score ([setting] in the contract)."""

    min_answered: int | None = Field(default=None, ge=0)
    max_missing: int | None = Field(default=None, ge=0)
    prorate: StrictBool | None = None


class Paper(Strict):
    """Paper back-up forms entered by staff."""

    double_entry: StrictBool = False  # two staff members enter each form independently
    late_entry_days: int = Field(default=14, ge=0)  # after the window closes, with a reason


class Corrections(Strict):
    """Data change requests: who approves a correction of a submitted answer."""

    approval: Literal["second_person", "password"] = "second_person"


class Retention(Strict):
    """How long contact details are kept after the last timepoint's window closes."""

    contact_days_after_follow_up: int = Field(default=90, ge=0)


class Study(Strict):
    id: Identifier
    title: LocalText
    registration: str | None = None
    code_pattern: NonEmpty
    timezone: str = "Europe/Oslo"
    sites: tuple[Site, ...] = Field(min_length=1)
    windows: Window = Window(before=3, after=7)
    timepoints: tuple[Timepoint, ...] = Field(min_length=1)
    visits: tuple[Visit, ...] = ()
    derived: tuple[Derived, ...] = ()
    reminders: Reminders = Reminders()
    messages: Messages | None = None
    scoring: dict[Identifier, dict[Identifier, ScoringOverride]] = {}
    paper: Paper = Paper()
    corrections: Corrections = Corrections()
    retention: Retention = Retention()
    content_hash: str = ""
    source: str = ""

    @field_validator("code_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"code_pattern is not a valid regular expression: {exc}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use e.g. Europe/Oslo)") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def timepoint(self, timepoint_id: str) -> Timepoint:
        """Return the timepoint with this id (KeyError when unknown)."""
        for timepoint in self.timepoints:
            if timepoint.id == timepoint_id:
                return timepoint
        raise KeyError(timepoint_id)

    def code_is_valid(self, code: str) -> bool:
        """True when a study code matches the study's code pattern."""
        return re.fullmatch(self.code_pattern, code) is not None
