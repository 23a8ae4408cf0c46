"""An outbox message with the response it carries, read back as an export record.

A submitted response (each version) never changes, so reading it when sending gives the
same content as at submit; the record is built by the export model, so the sync and the
export files agree value for value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..exports.model import ExportRecord, build_record
from ..services.journal import current_answers
from ..services.scored import stored_scores

MESSAGE_SQL = """
SELECT o.message_id, o.kind, o.payload, o.created_at, o.response_id,
       p.study_code, p.site, a.timepoint, a.target_day, a.first_day, a.last_day,
       r.uuid, r.questionnaire, r.version, r.definition_version, r.definition_hash,
       r.status, r.started_at, r.submitted_at, r.source, r.filled_on
FROM outbox o
JOIN responses r ON r.id = o.response_id
JOIN assessments a ON a.id = r.assessment_id
JOIN participants p ON p.id = a.participant_id
WHERE o.message_id = ?
"""


@dataclass(frozen=True)
class Message:
    """What is sent: the stable message id and the response as the exports see it."""

    message_id: str
    kind: str
    created_at: str
    payload: dict
    record: ExportRecord


class MessageError(ValueError):
    """The outbox row cannot be sent (its response or definition is unknown)."""


def load(db, catalog, message_id: str) -> Message:
    """Read one outbox message and its response."""
    cursor = db.conn.execute(MESSAGE_SQL, [message_id])
    values = cursor.fetchone()
    if values is None:
        raise MessageError(f"outbox message {message_id} has no response")
    row = dict(zip([d[0] for d in cursor.description], values, strict=True))
    definition = catalog.questionnaires.get(row["questionnaire"])
    if definition is None:
        raise MessageError(f"no definition '{row['questionnaire']}' is loaded")
    record = build_record(
        participant=row,
        assessment=row,
        response=row,
        answers=current_answers(db, row["response_id"]),
        scores=stored_scores(db, row["response_id"]),
        definition=definition,
        zone=catalog.study.zone,
    )
    return Message(
        row["message_id"], row["kind"], row["created_at"], json.loads(row["payload"]), record
    )
