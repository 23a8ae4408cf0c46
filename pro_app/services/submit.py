"""Submit one questionnaire: response, scores, alerts, audit and one outbox message, at once."""

from __future__ import annotations

import os
import secrets
import signal

from ..domain.answers import validate_answers
from ..domain.paths import effective_answers, visible_items
from ..domain.scoring import score
from ..storage import audit
from ..storage.db import one, stamp, write
from .journal import current_answers
from .scored import enqueue, message, raise_alert, store_scores

RECEIPT_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U


class Incomplete(ValueError):
    """Some shown items have no answer; carries the first such item."""

    def __init__(self, item: str):
        self.item = item
        super().__init__(f"item {item} has no answer")


def crashpoint(label: str) -> None:
    """Kill this process here when PRO_CRASH_AT names the label (durability tests only)."""
    if os.environ.get("PRO_CRASH_AT") == label:
        os.kill(os.getpid(), signal.SIGKILL)


def missing_item(definition, answers: dict) -> str | None:
    """Return the first shown item without any answer (a skip must be an explicit declined)."""
    for item_id in visible_items(definition, answers):
        if answers.get(item_id) is None:
            return item_id
    return None


def new_receipt_code() -> str:
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def submit(
    db,
    *,
    response: dict,
    definition,
    assessment: dict,
    participant: dict,
    timepoint_questionnaires,
    submission_id: str,
    actor: str,
    actor_role: str = "participant",
    source: str = "phone",
    entered_by: str | None = None,
    filled_on: str | None = None,
) -> dict:
    """Submit a response once; a repeat with any submission id returns the same result.

    A paper form entered by staff passes source="paper", who entered it, the day it was
    filled in and the staff member's role (for the audit rows).
    """
    with write(db):
        fresh = one(db, "SELECT * FROM responses WHERE id = ?", [response["id"]])
        if fresh["status"] != "in_progress":
            return _outcome(db, assessment["id"], fresh, repeated=True)
        answers = effective_answers(definition, current_answers(db, fresh["id"]))
        gap = missing_item(definition, answers)
        if gap:
            raise Incomplete(gap)
        clean = validate_answers(
            definition, {k: v for k, v in answers.items() if v is not None}, strict=True
        )
        sheet = score(definition, clean)
        now = stamp()
        store_scores(db, fresh["id"], sheet, now)
        crashpoint("submit.after_scores")
        for alert in sheet.alerts:
            raise_alert(
                db,
                alert,
                response=fresh,
                participant=participant,
                actor=actor,
                role=actor_role,
                now=now,
            )
        if source == "phone":
            db.execute(
                "UPDATE responses SET status = 'submitted', submitted_at = ?, submission_id = ?,"
                " definition_version = ?, definition_hash = ? WHERE id = ?",
                (now, submission_id, sheet.version, sheet.content_hash, fresh["id"]),
            )
        else:  # one statement: a submitted response can no longer change (responses_frozen)
            db.execute(
                "UPDATE responses SET status = 'submitted', submitted_at = ?, submission_id = ?,"
                " definition_version = ?, definition_hash = ?, source = ?, entered_by = ?,"
                " filled_on = ? WHERE id = ?",
                (
                    now,
                    submission_id,
                    sheet.version,
                    sheet.content_hash,
                    source,
                    entered_by,
                    filled_on,
                    fresh["id"],
                ),
            )
        audit.record(
            db,
            actor=actor,
            role=actor_role,
            action="response.submit",
            entity="response",
            entity_id=fresh["uuid"],
            field="status",
            old="in_progress",
            new="submitted",
            at=now,
        )
        payload = message(
            response=fresh,
            version=fresh["version"],
            participant=participant,
            timepoint=assessment["timepoint"],
            definition=definition,
            sheet=sheet,
            submitted_at=now,
            answers=clean,
            source=source,
            filled_on=filled_on,
        )
        enqueue(db, "response.submitted", fresh["id"], payload, now)
        crashpoint("submit.before_complete")
        _complete_if_done(
            db, assessment, participant, timepoint_questionnaires, actor, now, role=actor_role
        )
        crashpoint("submit.before_commit")
        fresh = one(db, "SELECT * FROM responses WHERE id = ?", [fresh["id"]])
        return _outcome(db, assessment["id"], fresh, repeated=False, alerts=sheet.alerts)


def _complete_if_done(
    db, assessment, participant, questionnaires, actor, now, role="participant"
) -> None:
    submitted = {
        r["questionnaire"]
        for r in db.query(
            "SELECT questionnaire FROM responses WHERE assessment_id = ? AND status = 'submitted'",
            [assessment["id"]],
        )
    }
    if not set(questionnaires) <= submitted:
        return
    code = new_receipt_code()
    while one(db, "SELECT 1 AS x FROM assessments WHERE receipt_code = ?", [code]):
        code = new_receipt_code()
    db.execute(
        "UPDATE assessments SET completed_at = ?, receipt_code = ? WHERE id = ? "
        "AND completed_at IS NULL",
        (now, code, assessment["id"]),
    )
    audit.record(
        db,
        actor=actor,
        role=role,
        action="assessment.complete",
        entity="assessment",
        entity_id=f"{participant['study_code']}/{assessment['timepoint']}",
        new={"receipt_code": code},
        at=now,
    )


def _outcome(db, assessment_id: int, response: dict, *, repeated: bool, alerts=()) -> dict:
    row = one(
        db, "SELECT completed_at, receipt_code FROM assessments WHERE id = ?", [assessment_id]
    )
    return {
        "response": response,
        "repeated": repeated,
        "alerts": tuple(alerts),
        "receipt_code": row["receipt_code"],
        "completed": bool(row["completed_at"]),
    }
