"""Delivery state per (outbox message, target): add, claim with a lease, finish, retry.

Claiming happens inside BEGIN IMMEDIATE, and a claimed row carries a lease (owner, until):
two workers never hold the same message for the same target at once. A worker killed
mid-send leaves its lease to run out; the message is then sent again, which every target
takes without a second effect (REDCap overwrites the same values, FHIR updates by
identifier, a webhook receiver keeps message ids).

Order: for one response and target, a message is not claimed while an earlier message of
the same response is still pending, so versions arrive in order.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from dataclasses import dataclass

from ..storage import audit
from ..storage.db import parse_stamp, rows, stamp, write

ADD_SQL = """
INSERT OR IGNORE INTO sync_deliveries
    (message_id, target, status, attempts, next_attempt_at, created_at, updated_at)
SELECT o.message_id, ?, 'pending', 0, o.created_at, ?, ?
FROM outbox o
WHERE o.kind IN ({kinds})
  AND NOT EXISTS (SELECT 1 FROM sync_deliveries d
                  WHERE d.message_id = o.message_id AND d.target = ?)
"""

CLAIM_SQL = """
SELECT d.message_id, d.attempts, o.created_at, o.response_id
FROM sync_deliveries d JOIN outbox o ON o.message_id = d.message_id
WHERE d.target = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
  AND (d.lease_until IS NULL OR d.lease_until < ?)
  AND NOT EXISTS (
      SELECT 1 FROM sync_deliveries e JOIN outbox p ON p.message_id = e.message_id
      WHERE e.target = d.target AND e.status = 'pending'
        AND p.response_id = o.response_id AND p.id < o.id)
ORDER BY o.id
LIMIT 1
"""


@dataclass(frozen=True)
class Claim:
    message_id: str
    target: str
    attempts: int  # before this one
    created_at: str


def add_new(db, target: str, kinds, now: dt.datetime) -> int:
    """Add a pending row for every outbox message this target has not seen; return how many."""
    with write(db):
        cursor = db.conn.execute(
            ADD_SQL.format(kinds=", ".join("?" for _ in kinds)),
            [target, stamp(now), stamp(now), *kinds, target],
        )
        return cursor.rowcount


def claim(db, target: str, worker: str, now: dt.datetime, lease_seconds: float) -> Claim | None:
    """Take the next due message for target, with a lease; None when nothing is due."""
    with write(db):
        found = db.conn.execute(CLAIM_SQL, [target, stamp(now), stamp(now)]).fetchone()
        if found is None:
            return None
        message_id, attempts, created_at, _response = found
        until = now + dt.timedelta(seconds=lease_seconds)
        db.conn.execute(
            "UPDATE sync_deliveries SET lease_owner = ?, lease_until = ?, updated_at = ?"
            " WHERE message_id = ? AND target = ?",
            [worker, stamp(until), stamp(now), message_id, target],
        )
        return Claim(message_id, target, attempts, created_at)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_orphans(db, host: str) -> int:
    """Free leases held by workers on this host whose process is gone (killed, crashed),
    so a restarted worker resumes at once instead of waiting for the lease to run out."""
    owners = [
        r[0]
        for r in db.conn.execute(
            "SELECT DISTINCT lease_owner FROM sync_deliveries WHERE lease_owner IS NOT NULL"
        )
    ]
    dead = []
    for owner in owners:
        parts = owner.rsplit(":", 2)
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
            if int(parts[1]) != os.getpid() and not _alive(int(parts[1])):
                dead.append(owner)
    if not dead:
        return 0
    with write(db):
        return db.conn.execute(
            "UPDATE sync_deliveries SET lease_owner = NULL, lease_until = NULL"
            f" WHERE lease_owner IN ({', '.join('?' for _ in dead)})",
            dead,
        ).rowcount


def backoff(config, attempts: int, rng: random.Random | None = None) -> float:
    """Seconds until the next attempt after attempts failures: exponential, capped,
    with jitter (a random half to whole of the step), so workers do not retry in step."""
    step = min(config.backoff_max_seconds, config.backoff_seconds * 2 ** max(attempts - 1, 0))
    return step * (rng or random).uniform(0.5, 1.0)


def finish(
    db,
    claim: Claim,
    *,
    config,
    worker: str,
    started: dt.datetime,
    now: dt.datetime,
    outcome: str,
    detail: str,
    payload_sha256: str | None = None,
) -> str:
    """Record an attempt's outcome ('sent', 'retry' or 'refused'); return the new status.

    A retry past the target's attempts or age, and a refusal, park the message as dead.
    """
    attempts = claim.attempts + 1
    age = now - parse_stamp(claim.created_at)
    status, kind = "pending", outcome
    if outcome == "sent":
        status = "sent"
    elif outcome == "refused":
        status, kind = "dead", "refused"
    elif attempts >= config.max_attempts or age > dt.timedelta(hours=config.max_age_hours):
        status, kind = "dead", "dead"
        detail = f"{detail} (gave up after {attempts} attempts over {_age(age)})"
    next_at = now + dt.timedelta(seconds=backoff(config, attempts))
    with write(db):
        db.conn.execute(
            "UPDATE sync_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
            " lease_owner = NULL, lease_until = NULL, last_error = ?, acknowledged_at = ?,"
            " ack = COALESCE(?, ack), payload_sha256 = COALESCE(?, payload_sha256),"
            " updated_at = ? WHERE message_id = ? AND target = ?",
            [
                status,
                attempts,
                stamp(next_at),
                None if status == "sent" else detail,
                stamp(now) if status == "sent" else None,
                detail if status == "sent" else None,
                payload_sha256,
                stamp(now),
                claim.message_id,
                claim.target,
            ],
        )
        db.conn.execute(
            "INSERT INTO sync_attempts (message_id, target, worker, started_at, finished_at,"
            " outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [claim.message_id, claim.target, worker, stamp(started), stamp(now), kind, detail],
        )
    return status


def _age(age: dt.timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def retry_dead(db, *, target: str | None, message_id: str | None, actor: str, role: str) -> int:
    """Put dead messages back in the queue (due now, attempts from zero); audited."""
    where, params = ["status = 'dead'"], []
    if target:
        where.append("target = ?")
        params.append(target)
    if message_id:
        where.append("message_id = ?")
        params.append(message_id)
    now = stamp()
    with write(db):
        dead = rows(
            db,
            "SELECT message_id, target, last_error FROM sync_deliveries"
            f" WHERE {' AND '.join(where)}",
            params,
        )
        for row in dead:
            db.conn.execute(
                "UPDATE sync_deliveries SET status = 'pending', attempts = 0,"
                " next_attempt_at = ?, updated_at = ? WHERE message_id = ? AND target = ?",
                [now, now, row["message_id"], row["target"]],
            )
            audit.record(
                db,
                actor=actor,
                role=role,
                action="sync.retry",
                entity="outbox",
                entity_id=row["message_id"],
                field=row["target"],
                old="dead",
                new="pending",
                reason=row["last_error"],
            )
    return len(dead)


def summary(db, targets) -> list[dict]:
    """Per target: pending, dead and sent counts, oldest pending, last success, last error."""
    result = []
    for target in targets:
        name = target.name
        counts = dict(
            db.conn.execute(
                "SELECT status, COUNT(*) FROM sync_deliveries WHERE target = ? GROUP BY status",
                [name],
            ).fetchall()
        )
        unseen = db.conn.execute(
            "SELECT COUNT(*), MIN(created_at) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM"
            " sync_deliveries d WHERE d.message_id = o.message_id AND d.target = ?)",
            [name],
        ).fetchone()
        oldest = db.conn.execute(
            "SELECT MIN(o.created_at) FROM sync_deliveries d JOIN outbox o"
            " ON o.message_id = d.message_id WHERE d.target = ? AND d.status = 'pending'",
            [name],
        ).fetchone()[0]
        oldest = min(x for x in (oldest, unseen[1]) if x) if (oldest or unseen[1]) else None
        success = db.conn.execute(
            "SELECT MAX(finished_at) FROM sync_attempts WHERE target = ? AND outcome = 'sent'",
            [name],
        ).fetchone()[0]
        error = db.conn.execute(
            "SELECT finished_at, detail FROM sync_attempts WHERE target = ? AND outcome != 'sent'"
            " ORDER BY id DESC LIMIT 1",
            [name],
        ).fetchone()
        result.append(
            {
                "target": name,
                "type": target.type,
                "pending": counts.get("pending", 0) + unseen[0],
                "dead": counts.get("dead", 0),
                "sent": counts.get("sent", 0),
                "oldest_pending": oldest,
                "last_success": success,
                "last_error_at": error[0] if error else None,
                "last_error": error[1] if error else None,
            }
        )
    return result


def dead_messages(db, target: str | None = None, limit: int = 200) -> list[dict]:
    """Dead deliveries with their reason and response (no personal data beyond study code)."""
    return rows(
        db,
        "SELECT d.message_id, d.target, d.attempts, d.last_error, d.updated_at,"
        " p.study_code, a.timepoint, r.questionnaire, r.version"
        " FROM sync_deliveries d JOIN outbox o ON o.message_id = d.message_id"
        " JOIN responses r ON r.id = o.response_id JOIN assessments a ON a.id = r.assessment_id"
        " JOIN participants p ON p.id = a.participant_id"
        " WHERE d.status = 'dead' AND (? IS NULL OR d.target = ?)"
        " ORDER BY d.updated_at DESC LIMIT ?",
        [target, target, limit],
    )
