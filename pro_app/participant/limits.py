"""Rate limits kept in SQLite, so every worker shares them."""

from __future__ import annotations

import hashlib
import time

from flask import current_app, request

from ..database import get_db
from ..storage.db import write


def client_key(prefix: str) -> str:
    """A key for the client address that stores no address (salted hash, truncated)."""
    salt = current_app.config["SECRET_KEY"]
    digest = hashlib.sha256(f"{salt}|{request.remote_addr}".encode()).hexdigest()[:16]
    return f"{prefix}:{digest}"


def allow(key: str, limit: int, window_seconds: int) -> bool:
    """Count one attempt for key in the current window; False once over the limit."""
    window = int(time.time()) // window_seconds
    db = get_db()
    with write(db):
        db.execute(
            "INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1) "
            "ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1",
            (key, window),
        )
        count = db.execute(
            "SELECT count FROM rate_limits WHERE key = ? AND window_start = ?", (key, window)
        ).fetchone()[0]
        db.execute("DELETE FROM rate_limits WHERE window_start < ?", (window - 1,))
    return count <= limit
