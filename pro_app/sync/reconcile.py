"""Compare what we hold with what each target acknowledged (and, where it can be read,
with what it holds now): one line per message and target."""

from __future__ import annotations

from dataclasses import dataclass

from ..storage.db import rows
from .messages import MessageError, load
from .transport import Refused, Retry

STATES = ("acknowledged", "sent", "pending", "dead", "differs")

REPORT_SQL = """
SELECT o.message_id, o.kind, o.response_id, r.uuid, r.version, r.questionnaire,
       p.study_code, a.timepoint,
       d.status, d.attempts, d.last_error, d.ack,
       (SELECT MAX(r2.version) FROM responses r2 WHERE r2.uuid = r.uuid
          AND r2.status = 'submitted') AS newest
FROM outbox o
JOIN responses r ON r.id = o.response_id
JOIN assessments a ON a.id = r.assessment_id
JOIN participants p ON p.id = a.participant_id
LEFT JOIN sync_deliveries d ON d.message_id = o.message_id AND d.target = ?
WHERE o.kind IN ({kinds})
ORDER BY p.study_code, o.id
"""


@dataclass(frozen=True)
class Line:
    target: str
    study_code: str
    timepoint: str
    questionnaire: str
    version: int
    message_id: str
    state: str
    detail: str


def _state(row) -> tuple[str, str]:
    if row["status"] == "sent":
        return "acknowledged", row["ack"] or ""
    if row["status"] == "dead":
        return "dead", row["last_error"] or ""
    if row["status"] == "pending" and row["attempts"]:
        return "sent", f"{row['attempts']} attempt(s), no acknowledgement: {row['last_error']}"
    return "pending", ""


def reconcile(db, catalog, worker, targets, read_back: bool = True) -> list[Line]:
    """Return the report lines for targets (Worker gives the adapters)."""
    lines = []
    for target in targets:
        adapter = worker.adapters[target.name]
        can_read = read_back and hasattr(adapter, "read_back")
        found = rows(
            db,
            REPORT_SQL.format(kinds=", ".join("?" for _ in target.kinds)),
            [target.name, *target.kinds],
        )
        for row in found:
            state, detail = _state(row)
            if state == "acknowledged" and can_read and row["version"] == row["newest"]:
                state, detail = _compare(db, catalog, adapter, row, detail)
            lines.append(
                Line(
                    target.name,
                    row["study_code"],
                    row["timepoint"],
                    row["questionnaire"],
                    row["version"],
                    row["message_id"],
                    state,
                    detail,
                )
            )
    return lines


def _compare(db, catalog, adapter, row, detail: str) -> tuple[str, str]:
    try:
        message = load(db, catalog, row["message_id"])
        held = adapter.read_back(message)
    except (Retry, Refused, MessageError) as trouble:
        return "acknowledged", f"{detail}; could not read it back: {trouble}"
    if held is None:
        return "differs", "acknowledged, but the target does not hold it"
    different = adapter.differences(message, held)
    if different:
        return "differs", "the target holds other values for: " + ", ".join(different)
    return "acknowledged", f"{detail}; matches the target"


def totals(lines) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for line in lines:
        per = counts.setdefault(line.target, dict.fromkeys(STATES, 0))
        per[line.state] += 1
    return counts
