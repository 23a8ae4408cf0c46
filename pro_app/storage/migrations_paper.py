"""Migrations for the paper part (registered on the shared list in schema.py, in file order)."""

from __future__ import annotations

from .schema import _guard, migrations

PAPER = """
-- Where a response's answers came from: the participant's phone, or a paper form entered by
-- staff (who entered it, and the day the participant filled it in, Europe/Oslo).
ALTER TABLE responses ADD COLUMN source TEXT NOT NULL DEFAULT 'phone'
    CHECK (source IN ('phone', 'paper'));
ALTER TABLE responses ADD COLUMN entered_by TEXT;
ALTER TABLE responses ADD COLUMN filled_on TEXT;

-- Double data entry: two staff members enter the same paper form independently. Each entry is
-- kept as entered; it becomes a response only after every difference is resolved.
CREATE TABLE paper_entries (
    id INTEGER PRIMARY KEY,
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    questionnaire TEXT NOT NULL,
    entry INTEGER NOT NULL CHECK (entry IN (1, 2)),
    save_id TEXT NOT NULL UNIQUE,
    staff TEXT NOT NULL,
    answers TEXT NOT NULL,
    filled_on TEXT NOT NULL,
    reason TEXT,
    definition_version TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (assessment_id, questionnaire, entry)
) STRICT;

-- The value chosen, with the paper at hand, for each item where the two entries differ
-- (item ':filled_on' is the day the form was filled in).
CREATE TABLE paper_resolutions (
    id INTEGER PRIMARY KEY,
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    questionnaire TEXT NOT NULL,
    item TEXT NOT NULL,
    value TEXT,
    staff TEXT NOT NULL,
    at TEXT NOT NULL,
    UNIQUE (assessment_id, questionnaire, item)
) STRICT;
"""


@migrations(name="0010_paper")
def paper(db) -> None:
    """Source of each response; double-entry drafts and their resolutions (append-only)."""
    db.executescript(PAPER + _guard("paper_entries") + _guard("paper_resolutions"))
