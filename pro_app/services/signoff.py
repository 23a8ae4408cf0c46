"""Investigator sign-off of a timepoint: what was signed, its SHA-256, and whether it still holds.

The signed content is the timepoint's newest submitted version of each questionnaire (UUID,
version, questionnaire, definition version and hash, source, submission time, answers and
scores with reasons) as canonical JSON: sorted keys, compact separators, UTF-8. A signature
covers the current state while the same content, computed again now, has the same hash.
"""

from __future__ import annotations

import hashlib
import json

from ..storage import audit
from ..storage.db import one, rows, stamp, write
from .journal import current_answers
from .scored import stored_scores

SIGNERS = ("investigator",)
MEANINGS = ("reviewed",)
MAX_NAME = 200
DEFAULT_SOURCE = "phone"  # a response without a stored source was answered on the phone

NEWEST_SQL = """
SELECT r.* FROM responses r
WHERE r.assessment_id = ? AND r.status = 'submitted'
  AND r.version = (SELECT MAX(r2.version) FROM responses r2
                   WHERE r2.assessment_id = r.assessment_id
                     AND r2.questionnaire = r.questionnaire AND r2.status = 'submitted')
ORDER BY r.questionnaire
"""


class SignError(ValueError):
    """A sign-off that cannot be made; key names the problem (pages say it in words)."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


def source_of(row: dict) -> str:
    """Where the answers came from (phone, paper); older rows have no source: the phone."""
    return row.get("source") or DEFAULT_SOURCE


def content(db, participant: dict, assessment: dict) -> dict:
    """The timepoint's current submitted content, as it is signed."""
    responses = []
    for row in rows(db, NEWEST_SQL, [assessment["id"]]):
        scores = {
            name: {"value": value, "reason": reason}
            for name, (value, reason) in stored_scores(db, row["id"]).items()
        }
        responses.append(
            {
                "uuid": row["uuid"],
                "version": row["version"],
                "questionnaire": row["questionnaire"],
                "definition_version": row["definition_version"],
                "definition_hash": row["definition_hash"],
                "source": source_of(row),
                "submitted_at": row["submitted_at"],
                "answers": current_answers(db, row["id"]),
                "scores": scores,
            }
        )
    return {
        "participant": participant["study_code"],
        "timepoint": assessment["timepoint"],
        "responses": responses,
    }


def canonical(value: dict) -> str:
    """Sorted keys, compact separators, no ASCII escaping (hashed as UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def last_name_used(db, email: str) -> str:
    """The name this person signed with last time (to fill the form in)."""
    found = one(
        db,
        "SELECT signer_name FROM signatures WHERE signer_email = ? ORDER BY id DESC LIMIT 1",
        [email],
    )
    return found["signer_name"] if found else ""


def checked_form(name: str, meaning: str) -> str:
    """Return the signer's name tidied, or raise SignError for the name or the meaning."""
    name = " ".join((name or "").split())
    if not name:
        raise SignError("name", "write your full name as it is to appear on the signature")
    if len(name) > MAX_NAME:
        raise SignError("name_long", f"the name may have at most {MAX_NAME} characters")
    if meaning not in MEANINGS:
        raise SignError("meaning", f"choose what the signature means ({', '.join(MEANINGS)})")
    return name


def sign(
    db,
    *,
    participant: dict,
    assessment: dict,
    staff: dict,
    name: str,
    meaning: str,
    second_factor: bool,
) -> dict:
    """Store a signature of the timepoint's current content; return the signature row.

    The caller has checked the password (and the code, when the second factor is on).
    """
    if staff["role"] not in SIGNERS:
        raise PermissionError("only an investigator of the site can sign off")
    name = checked_form(name, meaning)
    with write(db):
        signed = content(db, participant, assessment)
        if not signed["responses"]:
            raise SignError("nothing", "nothing is submitted at this timepoint yet")
        text = canonical(signed)
        digest = sha256(text)
        now = stamp()
        cursor = db.execute(
            "INSERT INTO signatures (participant_id, assessment_id, timepoint, signer_email,"
            " signer_name, signer_role, meaning, signed_at, content, content_sha256,"
            " second_factor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                participant["id"],
                assessment["id"],
                assessment["timepoint"],
                staff["email"],
                name,
                staff["role"],
                meaning,
                now,
                text,
                digest,
                int(second_factor),
            ),
        )
        audit.record(
            db,
            actor=staff["email"],
            role=staff["role"],
            action="signature.sign",
            entity="signature",
            entity_id=f"{participant['study_code']}/{assessment['timepoint']}",
            field="meaning",
            new={
                "signature": cursor.lastrowid,
                "meaning": meaning,
                "name": name,
                "sha256": digest,
                "second_factor": bool(second_factor),
                "responses": {r["questionnaire"]: r["version"] for r in signed["responses"]},
            },
            at=now,
        )
        return one(db, "SELECT * FROM signatures WHERE id = ?", [cursor.lastrowid])


def state(db, participant: dict, assessment: dict) -> list[dict]:
    """Every signature of the timepoint, newest first, with whether it covers what is there now.

    Each has covers (bool) and, when it does not, changes: what happened after signing
    (kind 'corrected' with the questionnaire and the newer version, 'added' for a
    questionnaire submitted later, 'other' when the content differs in another way).
    """
    found = rows(
        db, "SELECT * FROM signatures WHERE assessment_id = ? ORDER BY id DESC", [assessment["id"]]
    )
    if not found:
        return []
    now = content(db, participant, assessment)
    digest = sha256(canonical(now))
    result = []
    for row in found:
        covers = row["content_sha256"] == digest
        result.append({**row, "covers": covers, "changes": [] if covers else _changes(row, now)})
    return result


def _changes(row: dict, now: dict) -> list[dict]:
    signed = {r["uuid"]: r for r in json.loads(row["content"])["responses"]}
    changes = []
    for current in now["responses"]:
        before = signed.get(current["uuid"])
        if before is None:
            changes.append({"kind": "added", "questionnaire": current["questionnaire"]})
        elif before["version"] != current["version"]:
            changes.append(
                {
                    "kind": "corrected",
                    "questionnaire": current["questionnaire"],
                    "version": current["version"],
                }
            )
    return changes or [{"kind": "other"}]


def verify(row: dict) -> bool:
    """True when a stored signature's hash is the SHA-256 of its stored content."""
    return sha256(row["content"]) == row["content_sha256"]
