"""Server-side staff sessions and login throttling (in SQLite, shared by every worker)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time

from ..storage.db import one, parse_stamp, stamp, utc_now, write

IDLE = dt.timedelta(minutes=30)
ABSOLUTE = dt.timedelta(hours=10)
FAILURE_WINDOW = 15 * 60
MAX_FAILURES_ACCOUNT = 10
MAX_FAILURES_ADDRESS = 50


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(db, staff_id: int, *, second_factor: bool) -> str:
    """Create a session; return the secret for the cookie (only its hash is stored)."""
    secret = secrets.token_urlsafe(32)
    now = stamp()
    with write(db):
        db.execute(
            "INSERT INTO staff_sessions (id, staff_id, created_at, last_seen,"
            " second_factor) VALUES (?, ?, ?, ?, ?)",
            (_key(secret), staff_id, now, now, int(second_factor)),
        )
    return secret


def load(db, secret: str | None) -> dict | None:
    """Return {session, staff} for a live session (touching it), or None."""
    if not secret:
        return None
    row = one(db, "SELECT * FROM staff_sessions WHERE id = ?", [_key(secret)])
    if row is None or row["ended_at"]:
        return None
    now = utc_now()
    if (
        now - parse_stamp(row["last_seen"]) > IDLE
        or now - parse_stamp(row["created_at"]) > ABSOLUTE
    ):
        end(db, secret)
        return None
    staff = one(db, "SELECT * FROM staff WHERE id = ?", [row["staff_id"]])
    if staff is None or staff["disabled_at"]:
        return None
    with write(db):
        db.execute("UPDATE staff_sessions SET last_seen = ? WHERE id = ?", (stamp(now), row["id"]))
    return {"session": row, "staff": staff}


def upgrade_factor(db, secret: str) -> None:
    with write(db):
        db.execute("UPDATE staff_sessions SET second_factor = 1 WHERE id = ?", (_key(secret),))


def end(db, secret: str | None) -> None:
    """End a session on the server (logout): the cookie alone no longer works."""
    if not secret:
        return
    with write(db):
        db.execute(
            "UPDATE staff_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
            (stamp(), _key(secret)),
        )


def failures(db, key: str) -> int:
    since = int(time.time()) - FAILURE_WINDOW
    return db.execute(
        "SELECT COUNT(*) FROM login_failures WHERE key = ? AND at >= ?", (key, since)
    ).fetchone()[0]


def blocked(db, account_key: str, address_key: str) -> bool:
    """True while an account or an address has too many recent failures (15 minutes)."""
    return (
        failures(db, account_key) >= MAX_FAILURES_ACCOUNT
        or failures(db, address_key) >= MAX_FAILURES_ADDRESS
    )


def record_failure(db, *keys: str) -> None:
    now = int(time.time())
    with write(db):
        for key in keys:
            db.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", (key, now))
        db.execute("DELETE FROM login_failures WHERE at < ?", (now - 2 * FAILURE_WINDOW,))
