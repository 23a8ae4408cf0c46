"""Migrations for the review part (registered on the shared list in schema.py, in file order).

0011_review: corrected versions of a response share its UUID (the responses table is rebuilt
so that (uuid, version), not uuid alone, is unique), data change requests with their
decisions, and investigators' signatures. All three new tables are append-only.
"""

from __future__ import annotations

import re

from .schema import _guard, migrations

REVIEW = """
-- A data change request: one item of one response version, the value asked for, why, and
-- the source the site has for it. The request never changes; its decision is a row below.
CREATE TABLE IF NOT EXISTS change_requests (
    id INTEGER PRIMARY KEY,
    response_uuid TEXT NOT NULL,
    version INTEGER NOT NULL,
    item TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    source TEXT NOT NULL CHECK (length(trim(source)) > 0),
    requested_by TEXT NOT NULL,
    requested_role TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    FOREIGN KEY (response_uuid, version) REFERENCES responses(uuid, version)
) STRICT;
CREATE INDEX IF NOT EXISTS change_requests_response ON change_requests(response_uuid, version);

-- The decision on a request, at most one (approved, rejected or withdrawn). An approval
-- names the response version it made.
CREATE TABLE IF NOT EXISTS change_request_events (
    id INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL UNIQUE REFERENCES change_requests(id),
    status TEXT NOT NULL CHECK (status IN ('approved', 'rejected', 'withdrawn')),
    decided_by TEXT NOT NULL,
    decided_role TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    note TEXT,
    password_confirmed INTEGER NOT NULL CHECK (password_confirmed IN (0, 1)),
    new_response_id INTEGER REFERENCES responses(id),
    CHECK ((status = 'approved') = (new_response_id IS NOT NULL))
) STRICT;

-- An investigator's sign-off of a timepoint: who, when, what it means, and exactly what was
-- signed (canonical JSON) with its SHA-256.
CREATE TABLE IF NOT EXISTS signatures (
    id INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants(id),
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    timepoint TEXT NOT NULL,
    signer_email TEXT NOT NULL,
    signer_name TEXT NOT NULL CHECK (length(trim(signer_name)) > 0),
    signer_role TEXT NOT NULL,
    meaning TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    content TEXT NOT NULL,
    content_sha256 TEXT NOT NULL CHECK (length(content_sha256) = 64),
    second_factor INTEGER NOT NULL CHECK (second_factor IN (0, 1))
) STRICT;
CREATE INDEX IF NOT EXISTS signatures_assessment ON signatures(assessment_id, id);
"""

APPEND_ONLY = ("change_requests", "change_request_events", "signatures")


def _guards() -> str:
    """The append-only triggers (IF NOT EXISTS: the step may run again)."""
    script = "".join(_guard(t) for t in APPEND_ONLY)
    return script.replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ")


def _uuid_alone_is_unique(conn) -> bool:
    for _, name, unique, *_ in conn.execute("PRAGMA index_list(responses)").fetchall():
        if unique:
            columns = [c[2] for c in conn.execute(f"PRAGMA index_info('{name}')").fetchall()]
            if columns == ["uuid"]:
                return True
    return False


def _rebuilt_table_sql(sql: str) -> str:
    """The responses table's own CREATE statement, with UNIQUE (uuid, version) for uuid."""
    changed, count = re.subn(r"\buuid TEXT NOT NULL UNIQUE\b", "uuid TEXT NOT NULL", sql)
    if count != 1:
        raise RuntimeError("0011_review: cannot find 'uuid TEXT NOT NULL UNIQUE' in responses")
    head, tail = changed.rsplit(")", 1)
    head, named = re.subn(r'^CREATE TABLE\s+"?responses"?', "CREATE TABLE responses_0011", head)
    if named != 1:
        raise RuntimeError("0011_review: the responses table's CREATE statement is unexpected")
    return f"{head},\n    UNIQUE (uuid, version)\n){tail}"


def _let_versions_share_the_uuid(conn) -> None:
    """Rebuild responses (SQLite cannot drop a constraint), keeping its rows, indexes and triggers.

    Every column, index and trigger is taken from the schema as it stands, so columns other
    migrations added are kept. Foreign keys are off around it (the caller's job) so that
    dropping the old table does not touch the tables that refer to it.
    """
    table = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'responses'"
    ).fetchone()[0]
    extras = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'responses'"
            " AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name"
        )
    ]
    conn.execute(_rebuilt_table_sql(table))
    conn.execute("INSERT INTO responses_0011 SELECT * FROM responses")
    # Legacy renaming: leave other triggers and views alone (they name 'responses' already).
    conn.execute("PRAGMA legacy_alter_table = ON")
    try:
        conn.execute("DROP TABLE responses")
        conn.execute("ALTER TABLE responses_0011 RENAME TO responses")
    finally:
        conn.execute("PRAGMA legacy_alter_table = OFF")
    for sql in extras:
        conn.execute(sql)


@migrations(name="0011_review", transactional=False)
def review(db) -> None:
    """Versions share the UUID; change requests, their decisions and signatures.

    Not in the runner's transaction: foreign keys must be switched off outside any
    transaction for the rebuild, so this step opens its own (BEGIN IMMEDIATE) and can run
    again after a crash between its commit and the runner's record of it.
    """
    conn = db.conn
    if conn.in_transaction:
        raise RuntimeError("0011_review runs outside a transaction (foreign keys must go off)")
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _uuid_alone_is_unique(conn):
                _let_versions_share_the_uuid(conn)
            # Inside a transaction, sqlite-utils runs a script statement by statement (no
            # implicit COMMIT as sqlite3's executescript would do).
            db.executescript(REVIEW + _guards())
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"0011_review: foreign key problems after rebuild: {problems}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
