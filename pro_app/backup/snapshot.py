"""Copy a live database with SQLite's online backup, and check a copy before trusting it."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from ..storage import audit
from ..storage.db import BUSY_TIMEOUT_S

MIGRATIONS_TABLE = "_sqlite_migrations"
MAX_LISTED = 20  # problems of one kind listed before "and N more"


def _read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def take(live: Path, target: Path) -> None:
    """Copy `live` into the new file `target` as one consistent snapshot.

    The backup runs in one step (pages=-1), so it reads inside one read transaction: the
    copy is the database as of one commit, while writers go on (WAL lets them). The copy
    is switched to a rollback journal so it is one self-contained file.
    """
    if not live.is_file():
        raise FileNotFoundError(f"there is no database at {live} (check PRO_DATABASE)")
    # Created empty with owner-only access before SQLite writes plain data into it.
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    with closing(_read_only(live)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


@dataclass
class Report:
    """What the checks of one database copy found."""

    problems: list[str] = field(default_factory=list)
    migrations: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    audit_rows: int = 0
    audit_head: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check(path: Path) -> Report:
    """Run integrity_check, foreign_key_check and the audit chain on a copy; count rows."""
    report = Report()
    try:
        with closing(_read_only(path)) as conn:
            _check(conn, report)
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"the copy cannot be read as an SQLite database ({exc})")
    return report


def _check(conn: sqlite3.Connection, report: Report) -> None:
    lines = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if lines != ["ok"]:
        report.problems += [f"integrity_check: {line}" for line in lines[:MAX_LISTED]]
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    for table, rowid, parent, _ in broken[:MAX_LISTED]:
        report.problems.append(
            f"foreign_key_check: {table} row {rowid} refers to a missing row in {parent}"
        )
    if len(broken) > MAX_LISTED:
        report.problems.append(f"foreign_key_check: and {len(broken) - MAX_LISTED} more")
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    for table in tables:
        quoted = table.replace('"', '""')
        report.row_counts[table] = conn.execute(f'SELECT count(*) FROM "{quoted}"').fetchone()[0]
    if MIGRATIONS_TABLE in tables:
        report.migrations = [
            row[0] for row in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY rowid")
        ]
    else:
        report.problems.append("no migrations table: this is not a pro_app database")
    if "audit" not in tables:
        report.problems.append("no audit table: this is not a pro_app database")
        return
    count, chain_problems = audit.verify(sqlite_utils.Database(conn, execute_plugins=False))
    report.audit_rows = count
    report.problems += [f"audit chain: {p}" for p in chain_problems[:MAX_LISTED]]
    if len(chain_problems) > MAX_LISTED:
        report.problems.append(f"audit chain: and {len(chain_problems) - MAX_LISTED} more")
    head = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    report.audit_head = head[0] if head else None
