"""What a scored response version stores beside its answers: score rows, alerts, and its
message for the trial database. Submit, paper entry and corrections all write these."""

from __future__ import annotations

import json
import uuid

from ..storage import audit
from .journal import decode


def store_scores(db, response_id: int, sheet, now: str) -> None:
    """One row per score of the sheet (value as JSON, or null with the reason)."""
    db.conn.executemany(
        "INSERT INTO scores (response_id, score, value, reason, definition_version,"
        " definition_hash, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                response_id,
                score_id,
                json.dumps(result.value),
                result.reason,
                sheet.version,
                sheet.content_hash,
                now,
            )
            for score_id, result in sheet.scores.items()
        ],
    )


def stored_scores(db, response_id: int) -> dict:
    """{score: (value, reason)} as stored for one response version, in stored order."""
    return {
        name: (decode(value), reason)
        for name, value, reason in db.conn.execute(
            "SELECT score, value, reason FROM scores WHERE response_id = ? ORDER BY id",
            [response_id],
        )
    }


def raise_alert(db, alert: str, *, response: dict, participant: dict, actor, role, now) -> None:
    """Record a safety alert of a response version, with its audit row."""
    db.execute(
        "INSERT INTO alerts (response_id, participant_id, site, alert, raised_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (response["id"], participant["id"], participant["site"], alert, now),
    )
    audit.record(
        db,
        actor=actor,
        role=role,
        action="alert.raise",
        entity="response",
        entity_id=response["uuid"],
        new=alert,
        at=now,
    )


def message(
    *,
    response: dict,
    version: int,
    participant: dict,
    timepoint: str,
    definition,
    sheet,
    submitted_at: str,
    answers: dict,
    source: str = "phone",
    filled_on=None,
    **extra,
) -> dict:
    """The outbox payload of a response version (the same shape for every kind)."""
    payload = {
        "response_id": response["uuid"],
        "version": version,
        "study_code": participant["study_code"],
        "site": participant["site"],
        "timepoint": timepoint,
        "questionnaire": definition.id,
        "definition_version": sheet.version,
        "definition_hash": sheet.content_hash,
        "submitted_at": submitted_at,
        "answers": answers,
        "scores": sheet.values(),
        "notes": sheet.notes(),
        **extra,
    }
    if source != "phone":  # a paper form says so, and the day it was filled in
        payload.update(source=source, filled_on=filled_on)
    return payload


def enqueue(db, kind: str, response_id: int, payload: dict, now: str) -> None:
    """One outbox message (a new stable id) in the caller's transaction."""
    db.execute(
        "INSERT INTO outbox (message_id, kind, response_id, payload, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (str(uuid.uuid4()), kind, response_id, json.dumps(payload, sort_keys=True), now),
    )
