"""Health probes for load balancers and monitors: /healthz (alive) and /readyz (can serve).

Their answers say nothing personal or internal: a word and a status. No session is read or
written (so no cookie is set), and no rate limit applies.
"""

from __future__ import annotations

import logging
import sqlite3

from flask import Blueprint, current_app

from .database import get_db
from .storage.schema import migrations

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

READY_TIMEOUT_MS = 2000  # a probe answers in seconds, not after the 10 s busy timeout


def _plain(text: str, status: int):
    response = current_app.response_class(text + "\n", status=status, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz():
    """The process is alive and answers (the database is not touched)."""
    return _plain("ok", 200)


def writable(db, timeout_ms: int = READY_TIMEOUT_MS) -> None:
    """Take the write lock and let it go at once (raises sqlite3.Error if that fails)."""
    conn = db.conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    before = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute(f"PRAGMA busy_timeout={int(timeout_ms)}")
    try:
        conn.execute("BEGIN IMMEDIATE")
        # A read-only file can still hand out the lock: a write that is rolled back shows it.
        conn.execute(
            "PRAGMA user_version = " + str(conn.execute("PRAGMA user_version").fetchone()[0])
        )
        conn.execute("ROLLBACK")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute(f"PRAGMA busy_timeout={int(before)}")


def problem() -> str | None:
    """Why the app cannot serve now (for the log only), or None when it can."""
    try:
        db = get_db()
        writable(db)
        pending = migrations.pending(db)
    except (sqlite3.Error, OSError) as error:  # OSError: the file's folder cannot be made
        return f"database not writable: {type(error).__name__}"
    if pending:
        return f"{len(pending)} migration(s) pending"
    return None


@bp.get("/readyz")
def readyz():
    """The database takes writes and its schema is current: 200 'ready', else 503."""
    reason = problem()
    if reason is None:
        return _plain("ready", 200)
    log.warning("not ready: %s", reason)
    return _plain("not ready", 503)
