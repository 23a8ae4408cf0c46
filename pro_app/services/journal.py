"""Responses and the answer journal: every save is a row; the latest row per item counts."""

from __future__ import annotations

import json
import uuid

from ..storage import audit
from ..storage.db import one, stamp, write


def encode(value) -> str | None:
    """Store a value as JSON text (None stays NULL: the answer was cleared)."""
    return None if value is None else json.dumps(value, ensure_ascii=False)


def decode(text: str | None):
    return None if text is None else json.loads(text)


def latest_response(db, assessment_id: int, questionnaire: str) -> dict | None:
    """Return the newest non-superseded response for a questionnaire at an assessment."""
    return one(
        db,
        "SELECT * FROM responses WHERE assessment_id = ? AND questionnaire = ? "
        "AND status != 'superseded' ORDER BY version DESC LIMIT 1",
        [assessment_id, questionnaire],
    )


def start(db, assessment_id: int, definition, *, actor: str, entity: str) -> dict:
    """Return the open (or submitted) response, creating one on first use."""
    existing = latest_response(db, assessment_id, definition.id)
    if existing:
        return existing
    with write(db):
        existing = latest_response(db, assessment_id, definition.id)  # another tab won
        if existing:
            return existing
        response_uuid = str(uuid.uuid4())
        db.execute(
            "INSERT INTO responses (uuid, assessment_id, questionnaire, definition_version,"
            " definition_hash, status, started_at) VALUES (?, ?, ?, ?, ?, 'in_progress', ?)",
            (
                response_uuid,
                assessment_id,
                definition.id,
                definition.version,
                definition.content_hash,
                stamp(),
            ),
        )
        audit.record(
            db,
            actor=actor,
            role="participant",
            action="response.start",
            entity="response",
            entity_id=response_uuid,
            new={"questionnaire": definition.id, "at": entity},
        )
    return latest_response(db, assessment_id, definition.id)


def current_answers(db, response_id: int) -> dict:
    """Return {item: value} from the latest journal row per item (cleared items left out)."""
    found = db.conn.execute(
        "SELECT item, value FROM answers WHERE id IN (SELECT MAX(id) FROM answers"
        " WHERE response_id = ? GROUP BY item)",
        [response_id],
    ).fetchall()
    return {item: decode(value) for item, value in found if value is not None}


def save_page(
    db,
    response: dict,
    page: int,
    values: dict,
    *,
    save_id: str,
    actor: str,
    role: str = "participant",
    client_time: str | None = None,
) -> dict | None:
    """Append the page's changed answers and return all current answers.

    Returns None when this save id was already stored (a repeat stores nothing).
    """
    with write(db):
        if one(db, "SELECT 1 AS x FROM page_saves WHERE save_id = ?", [save_id]):
            return None
        fresh = one(db, "SELECT status FROM responses WHERE id = ?", [response["id"]])
        if fresh["status"] != "in_progress":
            raise ValueError("the response is submitted; answers can no longer change")
        now = stamp()
        current = current_answers(db, response["id"])
        changed = {item: value for item, value in values.items() if current.get(item) != value}
        for item, value in changed.items():
            db.conn.execute(
                "INSERT INTO answers (response_id, item, value, save_id, client_time,"
                " server_time, actor) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (response["id"], item, encode(value), save_id, client_time, now, actor),
            )
        if changed:
            # One audit row per save: the items changed, with their old and new values.
            audit.record(
                db,
                actor=actor,
                role=role,
                action="answer.save",
                entity="response",
                entity_id=response["uuid"],
                field=",".join(changed),
                old={item: current.get(item) for item in changed},
                new=changed,
                at=now,
            )
        db.conn.execute(
            "INSERT INTO page_saves (save_id, response_id, page, saved_at) VALUES (?, ?, ?, ?)",
            (save_id, response["id"], page, now),
        )
        current.update(values)
    return {item: value for item, value in current.items() if value is not None}
