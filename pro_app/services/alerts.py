"""Safety alerts for the sites, and their acknowledgement with a note."""

from __future__ import annotations

from ..storage import audit
from ..storage.db import one, stamp, write


def open_alerts(db, sites) -> list[dict]:
    """Alerts at these sites that nobody has acknowledged, oldest first."""
    if not sites:
        return []
    marks = ",".join("?" for _ in sites)
    return list(
        db.query(
            "SELECT al.id, al.alert, al.raised_at, al.site, p.study_code, a.timepoint,"
            " r.questionnaire FROM alerts al JOIN participants p ON p.id = al.participant_id"
            " JOIN responses r ON r.id = al.response_id"
            " JOIN assessments a ON a.id = r.assessment_id"
            " LEFT JOIN alert_acks k ON k.alert_id = al.id"
            f" WHERE k.id IS NULL AND al.site IN ({marks})"
            " ORDER BY al.raised_at",
            list(sites),
        )
    )


def acknowledge(db, alert_id: int, *, note: str, staff: dict, sites) -> dict:
    """Acknowledge one alert with a note (the staff member's sites only)."""
    note = (note or "").strip()
    if not note:
        raise ValueError("write a note: what was done")
    with write(db):
        alert = one(
            db,
            "SELECT al.*, p.study_code FROM alerts al JOIN participants p"
            " ON p.id = al.participant_id WHERE al.id = ?",
            [alert_id],
        )
        if alert is None or alert["site"] not in sites:
            raise LookupError("no such alert")
        if one(db, "SELECT 1 AS x FROM alert_acks WHERE alert_id = ?", [alert_id]):
            return alert
        db.execute(
            "INSERT INTO alert_acks (alert_id, staff, note, at) VALUES (?, ?, ?, ?)",
            (alert_id, staff["email"], note[:2000], stamp()),
        )
        audit.record(
            db,
            actor=staff["email"],
            role=staff["role"],
            action="alert.acknowledge",
            entity="alert",
            entity_id=f"{alert['study_code']}/{alert['alert']}",
            reason=note[:2000],
        )
    return alert
