"""Connections with the durability settings, one write transaction per logical change."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path

import sqlite_utils

BUSY_TIMEOUT_S = 10.0


def utc_now() -> dt.datetime:
    """The server clock, in UTC (every stored time and every decision uses it)."""
    return dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime | None = None) -> str:
    """Render an aware time as stored: ISO 8601 UTC with microseconds and a Z."""
    moment = (moment or utc_now()).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(text: str) -> dt.datetime:
    """Read a stored time back as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open the database with WAL, synchronous=FULL, foreign keys and a busy timeout."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return sqlite_utils.Database(conn, execute_plugins=False)


@contextlib.contextmanager
def write(db: sqlite_utils.Database):
    """One logical change: BEGIN IMMEDIATE (so no lock upgrade can fail), commit or roll back."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        db.conn.execute("COMMIT")


def one(db: sqlite_utils.Database, sql: str, params=()) -> dict | None:
    """Return the first row of a query, or None."""
    return next(iter(db.query(sql, params)), None)
