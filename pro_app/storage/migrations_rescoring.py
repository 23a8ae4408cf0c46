"""Migrations for the rescoring part (registered on the shared list in schema.py, in file order)."""

from __future__ import annotations

from .schema import _guard, migrations

RESCORING = """
-- One row per re-scoring run: who, why, and the definition the scores were computed with.
-- responses: how many submitted responses were scored; changed: how many score values
-- differ from the scores stored at submit.
CREATE TABLE scoring_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    questionnaire TEXT NOT NULL,
    definition_version TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    responses INTEGER NOT NULL,
    changed INTEGER NOT NULL
) STRICT;

-- Scores computed again under a newer definition, beside the original rows in `scores`
-- (which never change). One row per run, response and score.
CREATE TABLE rescored (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES scoring_runs(id),
    response_id INTEGER NOT NULL REFERENCES responses(id),
    score TEXT NOT NULL,
    value TEXT,
    reason TEXT,
    definition_version TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    computed_at TEXT NOT NULL,
    UNIQUE (run_id, response_id, score)
) STRICT;
CREATE INDEX rescored_response ON rescored(response_id, score, run_id);
"""


@migrations(name="0008_rescoring")
def rescoring(db) -> None:
    """Re-scoring runs and the scores they computed (both append-only)."""
    db.executescript(RESCORING + _guard("scoring_runs") + _guard("rescored"))
