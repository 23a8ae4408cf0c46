"""Paper forms entered by staff: checks, single entry, double entry, comparison, resolution.

A paper form becomes a response like one from the phone: the same validation (the pages read
it), the same scoring, audit and outbox message through submit(), with source "paper", the
staff member(s) who entered it and the day the participant filled it in. A response already
submitted (on the phone or from paper) refuses paper entry; a phone draft in progress is
closed as superseded, with an audit row, when the paper response is made.

With double entry (study setting paper.double_entry) two different staff members enter the
form independently (paper_entries); the differences are listed, and either of them resolves
each one with the paper at hand (paper_resolutions) before the response is made.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from ..storage import audit
from ..storage.db import one, parse_stamp, rows, stamp, write
from .journal import decode, encode
from .submit import submit

PAPER = "paper"
# English texts of the problems; staff pages say them in the reader's language by key.
ENGLISH = {
    "withdrawn": "{code} is withdrawn from the study: no answers can be entered",
    "not_open": "the window of {timepoint} opens on {first_day}: a form cannot be entered before",
    "too_late": (
        "the window of {timepoint} closed on {last_day}; paper forms can be entered up to "
        "{days} days after that"
    ),
    "future": "the form cannot be filled in on a day in the future ({day})",
    "before_window": "the form was filled in before the window opened ({first_day})",
    "late_reason": "the window closed on {last_day}: give the reason the form is entered late",
    "answered_phone": "{questionnaire} was already answered on the phone on {day}",
    "answered_paper": "{questionnaire} was already entered from paper (filled in on {day})",
    "same_staff": "you made the first entry: a different staff member makes the second",
    "entries_done": "both entries are made: resolve the differences",
    "no_entries": "the second entry is not made yet: nothing to compare",
    "not_entrant": "only the two staff members who entered the form resolve the differences",
    "no_double_entry": "this study does not use double data entry",
    "double_entry": "this study uses double data entry: enter the form as first or second entry",
}


class PaperError(ValueError):
    """A paper entry that cannot be made now; key and values say why (ENGLISH[key])."""

    def __init__(self, key: str, **values):
        self.key = key
        self.values = values
        super().__init__(ENGLISH[key].format(**values))


@dataclass(frozen=True)
class Target:
    """One questionnaire of one participant's timepoint, and the staff member at work."""

    study: object
    participant: dict
    assessment: dict
    definition: object
    staff: dict  # {"email", "role"}

    @property
    def key(self) -> tuple[int, str]:
        return self.assessment["id"], self.definition.id

    @property
    def subject(self) -> str:
        """The audit entity id of the form: shown in the participant's audit history."""
        code, timepoint = self.participant["study_code"], self.assessment["timepoint"]
        return f"{code}/{timepoint}/{self.definition.id}"


# --- What stands now ---------------------------------------------------------------------------


def submitted_response(db, assessment_id: int, questionnaire: str) -> dict | None:
    """The submitted response (any version) of a questionnaire at an assessment, if any."""
    return one(
        db,
        "SELECT * FROM responses WHERE assessment_id = ? AND questionnaire = ?"
        " AND status = 'submitted' ORDER BY version DESC LIMIT 1",
        [assessment_id, questionnaire],
    )


def entries(db, assessment_id: int, questionnaire: str) -> list[dict]:
    """The double-entry rows made so far (entry 1, then 2), answers decoded."""
    found = rows(
        db,
        "SELECT * FROM paper_entries WHERE assessment_id = ? AND questionnaire = ? ORDER BY entry",
        [assessment_id, questionnaire],
    )
    for row in found:
        row["answers"] = json.loads(row["answers"])
    return found


def resolutions(db, assessment_id: int, questionnaire: str) -> dict:
    """{item: value} chosen so far where the two entries differ."""
    found = rows(
        db,
        "SELECT item, value FROM paper_resolutions WHERE assessment_id = ? AND questionnaire = ?",
        [assessment_id, questionnaire],
    )
    return {r["item"]: decode(r["value"]) for r in found}


def check_open(db, target: Target) -> None:
    """Raise PaperError when nothing may be entered for this questionnaire now."""
    if target.participant["status"] == "withdrawn":
        raise PaperError("withdrawn", code=target.participant["study_code"])
    done = submitted_response(db, *target.key)
    if done is None:
        return
    qid = target.definition.id
    if done["source"] == PAPER:
        raise PaperError("answered_paper", questionnaire=qid, day=done["filled_on"])
    day = parse_stamp(done["submitted_at"]).astimezone(target.study.zone).date().isoformat()
    raise PaperError("answered_phone", questionnaire=qid, day=day)


def check_dates(study, assessment: dict, filled_on: dt.date, reason: str, today: dt.date) -> None:
    """The form is entered in the window, or up to late_entry_days after it with a reason."""
    first = dt.date.fromisoformat(assessment["first_day"])
    last = dt.date.fromisoformat(assessment["last_day"])
    days = study.paper.late_entry_days
    timepoint = assessment["timepoint"]
    if today < first:
        raise PaperError("not_open", timepoint=timepoint, first_day=first.isoformat())
    if today > last + dt.timedelta(days=days):
        raise PaperError("too_late", timepoint=timepoint, last_day=last.isoformat(), days=days)
    if filled_on > today:
        raise PaperError("future", day=filled_on.isoformat())
    if filled_on < first:
        raise PaperError("before_window", first_day=first.isoformat())
    if (filled_on > last or today > last) and not (reason or "").strip():
        raise PaperError("late_reason", last_day=last.isoformat())


def entry_possible(db, target: Target, today: dt.date) -> PaperError | None:
    """Why no form can be entered today (the day filled in aside), or None."""
    try:
        check_open(db, target)
        check_dates(target.study, target.assessment, today, "-", today)
    except PaperError as exc:
        return exc
    return None


# --- Making the response -----------------------------------------------------------------------


@dataclass(frozen=True)
class Paper:
    """How the response came in: who entered it, the day filled in, why late, double entry."""

    entered_by: str
    filled_on: str
    reason: str
    double: bool


def _supersede_drafts(db, target: Target, now: str) -> None:
    for draft in rows(
        db,
        "SELECT id, uuid FROM responses WHERE assessment_id = ? AND questionnaire = ?"
        " AND status = 'in_progress'",
        list(target.key),
    ):
        db.execute("UPDATE responses SET status = 'superseded' WHERE id = ?", [draft["id"]])
        audit.record(
            db,
            actor=target.staff["email"],
            role=target.staff["role"],
            action="response.supersede",
            entity="response",
            entity_id=draft["uuid"],
            field="status",
            old="in_progress",
            new="superseded",
            reason="a paper form was entered",
            at=now,
        )


def _make_response(db, target: Target, answers: dict, paper: Paper, submission_id: str) -> dict:
    """Store the paper response with its answers in one transaction and return it; a repeated
    post (its submission id already used) returns the response it made."""
    definition, staff = target.definition, target.staff
    with write(db):
        repeated = one(db, "SELECT * FROM responses WHERE submission_id = ?", [submission_id])
        if repeated:
            return repeated
        check_open(db, target)
        now = stamp()
        _supersede_drafts(db, target, now)
        version = one(
            db,
            "SELECT COALESCE(MAX(version), 0) + 1 AS v FROM responses"
            " WHERE assessment_id = ? AND questionnaire = ?",
            list(target.key),
        )["v"]
        response_uuid = str(uuid.uuid4())
        cursor = db.execute(
            "INSERT INTO responses (uuid, assessment_id, questionnaire, version,"
            " definition_version, definition_hash, status, started_at, source, entered_by,"
            " filled_on) VALUES (?, ?, ?, ?, ?, ?, 'in_progress', ?, 'paper', ?, ?)",
            (response_uuid, *target.key, version, definition.version, definition.content_hash)
            + (now, paper.entered_by, paper.filled_on),
        )
        save_id = uuid.uuid4().hex
        for item, value in answers.items():
            db.execute(
                "INSERT INTO answers (response_id, item, value, save_id, client_time,"
                " server_time, actor) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                (cursor.lastrowid, item, encode(value), save_id, now, staff["email"]),
            )
        said = {"actor": staff["email"], "role": staff["role"], "at": now}
        audit.record(
            db,
            **said,
            action="paper.enter",
            entity="paper_form",
            entity_id=target.subject,
            new={
                "response": response_uuid,
                "filled_on": paper.filled_on,
                "entered_by": paper.entered_by,
                "double_entry": paper.double,
            },
            reason=paper.reason or None,
        )
        audit.record(
            db,
            **said,
            action="answer.save",
            entity="response",
            entity_id=response_uuid,
            field=",".join(answers),
            old=dict.fromkeys(answers),
            new=answers,
        )
        return one(db, "SELECT * FROM responses WHERE id = ?", [cursor.lastrowid])


def _finish(db, target: Target, answers: dict, paper: Paper, submission_id: str) -> dict:
    """Make the response and submit it (scores, alerts, audit, outbox, completion)."""
    response = _make_response(db, target, answers, paper, submission_id)
    return submit(
        db,
        response=response,
        definition=target.definition,
        assessment=target.assessment,
        participant=target.participant,
        timepoint_questionnaires=target.study.timepoint(
            target.assessment["timepoint"]
        ).questionnaires,
        submission_id=submission_id,
        actor=target.staff["email"],
        actor_role=target.staff["role"],
        source=PAPER,
        entered_by=paper.entered_by,
        filled_on=paper.filled_on,
    )


def _used(db, submission_id: str) -> bool:
    return (
        one(db, "SELECT 1 AS x FROM responses WHERE submission_id = ?", [submission_id]) is not None
    )


def enter(db, target: Target, answers: dict, *, filled_on, reason, today, submission_id) -> dict:
    """Single entry: check, then make and submit the paper response; return submit's outcome."""
    if target.study.paper.double_entry:
        raise PaperError("double_entry")
    if not _used(db, submission_id):
        check_open(db, target)
        check_dates(target.study, target.assessment, filled_on, reason, today)
    paper = Paper(target.staff["email"], filled_on.isoformat(), (reason or "").strip(), False)
    return _finish(db, target, answers, paper, submission_id)
