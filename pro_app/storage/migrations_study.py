"""Migrations for the study part (registered on the shared list in schema.py, in file order)."""

from __future__ import annotations

from .schema import _guard, migrations

STUDY_STATE = """
-- The study's state, one row per change (never edited): the newest row is the state now;
-- no rows means open. Locked: read-only (no submissions, invites or changes).
CREATE TABLE study_state (
    id INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('open', 'locked')),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0)
) STRICT;
"""


@migrations(name="0009_study_state")
def study_state(db) -> None:
    """The study's state changes (lock and unlock), append-only."""
    db.executescript(STUDY_STATE + _guard("study_state"))
