"""Versions of a response: reading them, comparing two, and making version n+1 of a
corrected response (its journal, scores, alerts, audit row and outbox message) in the
caller's transaction."""

from __future__ import annotations

from ..domain.answers import validate_answers
from ..domain.paths import effective_answers
from ..domain.scoring import score
from ..storage import audit
from ..storage.db import one, rows
from .journal import encode
from .scored import enqueue, message, raise_alert, store_scores

OWNER_SQL = """
SELECT r.*, p.id AS participant_id, p.study_code, p.site, a.timepoint
FROM responses r
JOIN assessments a ON a.id = r.assessment_id
JOIN participants p ON p.id = a.participant_id
"""


def newest(db, response_uuid: str) -> dict | None:
    """The newest submitted version of a response, with its participant and timepoint."""
    return one(
        db,
        OWNER_SQL + " WHERE r.uuid = ? AND r.status = 'submitted' ORDER BY r.version DESC LIMIT 1",
        [response_uuid],
    )


def versions(db, response_uuid: str) -> list[dict]:
    """Every submitted version of a response, oldest first."""
    return rows(
        db,
        OWNER_SQL + " WHERE r.uuid = ? AND r.status = 'submitted' ORDER BY r.version",
        [response_uuid],
    )


def diff(definition, older: dict, newer: dict) -> list[dict]:
    """The items and scores whose value differs between two versions, in definition order."""
    changes = []
    for item in definition.items:
        old, new = older["answers"].get(item.id), newer["answers"].get(item.id)
        if old != new:
            changes.append({"kind": "item", "id": item.id, "item": item, "old": old, "new": new})
    names = list(dict.fromkeys([*older["scores"], *newer["scores"]]))
    for name in names:
        old, new = older["scores"].get(name), newer["scores"].get(name)
        if old != new:
            changes.append({"kind": "score", "id": name, "old": old, "new": new})
    return changes


def new_version(db, definition, base: dict, answers: dict, request: dict, *, staff, now) -> dict:
    """Insert version n+1 with its journal, scores, alerts, audit and outbox rows."""
    corrected = {**answers, request["item"]: request["new"]}
    on_path = effective_answers(definition, corrected)
    clean = validate_answers(
        definition, {k: v for k, v in on_path.items() if v is not None}, strict=True
    )
    sheet = score(definition, clean)
    response_id = _insert_response(db, base)
    version = base["version"] + 1
    save_id = f"change-request-{request['id']}"
    for item_id, value in corrected.items():
        db.execute(
            "INSERT INTO answers (response_id, item, value, save_id, client_time, server_time,"
            " actor) VALUES (?, ?, ?, ?, NULL, ?, ?)",
            (response_id, item_id, encode(value), save_id, now, staff["email"]),
        )
    store_scores(db, response_id, sheet, now)
    _raise_new_alerts(db, base, sheet.alerts, response_id, staff=staff, now=now)
    audit.record(
        db,
        actor=staff["email"],
        role=staff["role"],
        action="response.correct",
        entity="response",
        entity_id=base["uuid"],
        field=request["item"],
        old={"value": request["old"], "version": base["version"]},
        new={"value": request["new"], "version": version, "change_request": request["id"]},
        reason=f"{request['reason']} (source: {request['source']}; requested by"
        f" {request['requested_by']} at {request['requested_at']})",
        at=now,
    )
    payload = message(
        response=base,
        version=version,
        participant={"study_code": base["study_code"], "site": base["site"]},
        timepoint=base["timepoint"],
        definition=definition,
        sheet=sheet,
        submitted_at=base["submitted_at"],
        answers=clean,
        source=base.get("source") or "phone",
        filled_on=base.get("filled_on"),
        corrected_at=now,
    )
    enqueue(db, "response.corrected", response_id, payload, now)
    return one(db, "SELECT * FROM responses WHERE id = ?", [response_id])


def _insert_response(db, base: dict) -> int:
    """Copy the base version's row (every column, also those other parts add) as n+1.

    The times stay the participant's: started_at and submitted_at keep what they answered
    and when; the correction's own time is in the decision, the scores and the audit.
    """
    stored = one(db, "SELECT * FROM responses WHERE id = ?", [base["id"]])
    values = {c: v for c, v in stored.items() if c != "id"}
    values.update(version=base["version"] + 1, status="submitted", submission_id=None)
    names = sorted(values)
    cursor = db.execute(
        f"INSERT INTO responses ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        [values[n] for n in names],
    )
    return cursor.lastrowid


def _raise_new_alerts(db, base: dict, alerts, response_id: int, *, staff, now) -> None:
    """Record alerts the corrected answers raise that no version of the response raised."""
    raised = {
        r["alert"]
        for r in rows(
            db,
            "SELECT al.alert FROM alerts al JOIN responses r ON r.id = al.response_id"
            " WHERE r.uuid = ?",
            [base["uuid"]],
        )
    }
    for alert in alerts:
        if alert in raised:
            continue
        raise_alert(
            db,
            alert,
            response={"id": response_id, "uuid": base["uuid"]},
            participant={"id": base["participant_id"], "site": base["site"]},
            actor=staff["email"],
            role=staff["role"],
            now=now,
        )
