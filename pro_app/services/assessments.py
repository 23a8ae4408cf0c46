"""Assessments as stored, turned back into domain objects with their state."""

from __future__ import annotations

import datetime as dt

from ..domain.schedule import Assessment
from ..storage.db import one, parse_stamp


def to_domain(row: dict, study) -> Assessment:
    """Rebuild the domain assessment (window, target, questionnaires) from its row."""
    return Assessment(
        timepoint=row["timepoint"],
        questionnaires=study.timepoint(row["timepoint"]).questionnaires,
        target=dt.date.fromisoformat(row["target_day"]),
        first_day=dt.date.fromisoformat(row["first_day"]),
        last_day=dt.date.fromisoformat(row["last_day"]),
        opens_at=parse_stamp(row["opens_at"]),
        closes_at=parse_stamp(row["closes_at"]),
        can_be_late=bool(row["can_be_late"]),
        late_from=parse_stamp(row["late_from"]),
    )


def progress(db, assessment_id: int) -> dict[str, str]:
    """Return {questionnaire: 'in_progress' | 'submitted'} for the latest responses."""
    rows = db.query(
        "SELECT questionnaire, status FROM responses WHERE assessment_id = ? "
        "AND status != 'superseded' ORDER BY version",
        [assessment_id],
    )
    return {r["questionnaire"]: r["status"] for r in rows}


def state(db, row: dict, study, now: dt.datetime) -> str:
    """Return the assessment's state at now (upcoming, open, in_progress, ... missed)."""
    done = progress(db, row["id"])
    started = (
        bool(done)
        or one(
            db,
            "SELECT 1 AS x FROM answers JOIN responses r ON r.id = answers.response_id "
            "WHERE r.assessment_id = ? LIMIT 1",
            [row["id"]],
        )
        is not None
    )
    return to_domain(row, study).state(now, completed=bool(row["completed_at"]), started=started)


def for_participant(db, participant_id: int) -> list[dict]:
    """Return a participant's assessment rows in schedule order."""
    return list(
        db.query(
            "SELECT * FROM assessments WHERE participant_id = ? ORDER BY target_day, id",
            [participant_id],
        )
    )
