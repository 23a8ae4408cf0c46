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
    db.audit_head = None  # the audit chain's head, read once per transaction (audit.py)
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        db.conn.execute("COMMIT")
    finally:
        db.audit_head = None


def rows(db: sqlite_utils.Database, sql: str, params=()) -> list[dict]:
    """Run a read and return its rows as dicts.

    Plain sqlite3, not db.query(): that wraps every read in a SAVEPOINT and RELEASE, which
    tripled the statements of a page save.
    """
    cursor = db.conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def one(db: sqlite_utils.Database, sql: str, params=()) -> dict | None:
    """Return the first row of a query, or None."""
    cursor = db.conn.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))
