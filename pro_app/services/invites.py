"""Invite links: one token per participant and timepoint, only its hash stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from ..storage import audit
from ..storage.db import one, parse_stamp, stamp, write


def hash_token(token: str) -> str:
    """SHA-256 of the token: tokens carry 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(db, assessment: dict, participant: dict, *, actor: str, role: str) -> str:
    """Make a new link for an assessment; any earlier link for it dies at once."""
    token = secrets.token_urlsafe(32)
    now = stamp()
    with write(db):
        revoked = db.execute(
            "UPDATE invites SET revoked_at = ? WHERE assessment_id = ? AND revoked_at IS NULL",
            (now, assessment["id"]),
        ).rowcount
        db.execute(
            "INSERT INTO invites (assessment_id, token_hash, created_at, created_by, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (assessment["id"], hash_token(token), now, actor, assessment["closes_at"]),
        )
        audit.record(
            db,
            actor=actor,
            role=role,
            action="invite.reissue" if revoked else "invite.issue",
            entity="assessment",
            entity_id=f"{participant['study_code']}/{assessment['timepoint']}",
        )
    return token


def revoke(db, assessment: dict, participant: dict, *, actor: str, role: str) -> int:
    """Revoke every live link of an assessment; return how many were live."""
    with write(db):
        count = db.execute(
            "UPDATE invites SET revoked_at = ? WHERE assessment_id = ? AND revoked_at IS NULL",
            (stamp(), assessment["id"]),
        ).rowcount
        audit.record(
            db,
            actor=actor,
            role=role,
            action="invite.revoke",
            entity="assessment",
            entity_id=f"{participant['study_code']}/{assessment['timepoint']}",
            new={"revoked": count},
        )
    return count


@dataclass(frozen=True)
class Lookup:
    """What a token leads to: status is ok, unknown, upcoming, expired or finished."""

    status: str
    invite: dict | None = None
    assessment: dict | None = None
    participant: dict | None = None


def resolve(db, token: str, now: dt.datetime) -> Lookup:
    """Find what a token opens. Unknown and revoked tokens give the same answer."""
    row = one(
        db,
        "SELECT i.id AS invite_id, i.revoked_at, i.first_used_at, a.*, p.study_code, p.site,"
        " p.language, p.status AS participant_status FROM invites i"
        " JOIN assessments a ON a.id = i.assessment_id"
        " JOIN participants p ON p.id = a.participant_id WHERE i.token_hash = ?",
        [hash_token(token or "")],
    )
    if row is None or row["revoked_at"] or row["participant_status"] != "active":
        return Lookup("unknown")
    invite = {"id": row["invite_id"], "first_used_at": row["first_used_at"]}
    participant = {
        "id": row["participant_id"],
        "study_code": row["study_code"],
        "site": row["site"],
        "language": row["language"],
    }
    assessment = {k: row[k] for k in row if k in _ASSESSMENT_COLUMNS}
    if row["completed_at"]:
        return Lookup("finished", invite, assessment, participant)
    if now < parse_stamp(row["opens_at"]):
        return Lookup("upcoming", invite, assessment, participant)
    if now >= parse_stamp(row["closes_at"]):
        return Lookup("expired", invite, assessment, participant)
    return Lookup("ok", invite, assessment, participant)


_ASSESSMENT_COLUMNS = {
    "id",
    "participant_id",
    "timepoint",
    "target_day",
    "first_day",
    "last_day",
    "opens_at",
    "closes_at",
    "late_from",
    "can_be_late",
    "completed_at",
    "receipt_code",
}


def mark_used(db, invite_id: int, code: str, timepoint: str) -> None:
    """Record that a link was exchanged for a session (the first time, and each time)."""
    with write(db):
        db.execute(
            "UPDATE invites SET first_used_at = COALESCE(first_used_at, ?) WHERE id = ?",
            (stamp(), invite_id),
        )
        audit.record(
            db,
            actor=f"participant:{code}",
            role="participant",
            action="invite.open",
            entity="assessment",
            entity_id=f"{code}/{timepoint}",
        )


def link(base_url: str, token: str) -> str:
    """The link a participant taps."""
    return f"{base_url.rstrip('/')}/i/{token}"


def live_invite(db, invite_id: int) -> dict | None:
    """Return the invite if it is still usable (not revoked)."""
    return one(db, "SELECT * FROM invites WHERE id = ? AND revoked_at IS NULL", [invite_id])
