"""Re-score submitted responses under the current definition, beside the old scores (no Flask).

The scores stored at submit never change. A run computes every score of a questionnaire's
submitted responses (latest version of each) again with the definition the instance serves
now, exactly as submit does (current answers, answers on the path, score), and stores them
as new rows in `rescored` under one `scoring_runs` row, with one audit row for the run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ..domain.answers import validate_answers
from ..domain.errors import AnswerError
from ..domain.paths import effective_answers
from ..domain.scoring import ScoreSheet, score
from ..storage import audit
from ..storage.db import one, rows, stamp, write
from .journal import current_answers
from .scored import stored_scores

ROLES = ("admin", "data_manager")
ABSENT = object()  # a score one side has and the other has not
SHOWN_PROBLEMS = 5

LATEST_SUBMITTED_SQL = """
SELECT r.id, r.uuid, r.version, r.definition_version, r.definition_hash,
       a.timepoint, p.study_code
FROM responses r
JOIN assessments a ON a.id = r.assessment_id
JOIN participants p ON p.id = a.participant_id
WHERE r.questionnaire = ? AND r.status = 'submitted'
  AND r.version = (SELECT MAX(r2.version) FROM responses r2
                   WHERE r2.assessment_id = r.assessment_id
                     AND r2.questionnaire = r.questionnaire
                     AND r2.status = 'submitted')
ORDER BY p.study_code, a.id, r.id
"""


class RescoreError(ValueError):
    """A re-scoring that cannot run; the message says why and what to do. Nothing is stored."""


@dataclass(frozen=True)
class Change:
    """One score value that differs from the score stored at submit."""

    study_code: str
    timepoint: str
    score: str
    old: object  # the stored value, or ABSENT
    new: object  # the value now, or ABSENT


@dataclass(frozen=True)
class Rescored:
    """One response scored again."""

    response_id: int
    study_code: str
    timepoint: str
    stored_version: str
    stored_hash: str
    sheet: ScoreSheet
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Plan:
    """What a run computes: every response scored again, and what differs."""

    questionnaire: str
    definition_version: str
    definition_hash: str
    responses: tuple[Rescored, ...]
    earlier_runs: tuple[dict, ...]

    @property
    def current(self) -> int:
        """Responses already stored under this very definition (same content hash)."""
        return sum(1 for r in self.responses if r.stored_hash == self.definition_hash)

    @property
    def changed_responses(self) -> int:
        return sum(1 for r in self.responses if r.changes)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for r in self.responses for c in r.changes)

    def stored_definitions(self) -> dict[str, int]:
        """{"<version> <hash>": responses} of the definitions the stored scores came from."""
        found = Counter(f"{r.stored_version} {r.stored_hash}" for r in self.responses)
        return dict(sorted(found.items()))


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    run_id: int | None  # None for a dry run


def _comparable(value):
    """Compare values as the exports write them: 30 and 30.0 alike, True unlike 1."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("other", value)


def _changes(row: dict, stored: Mapping, sheet: ScoreSheet) -> tuple[Change, ...]:
    found = []
    now = sheet.values()
    for score_id in list(now) + [s for s in stored if s not in now]:
        old = stored.get(score_id, ABSENT)
        new = now.get(score_id, ABSENT)
        if old is ABSENT or new is ABSENT or _comparable(old) != _comparable(new):
            found.append(Change(row["study_code"], row["timepoint"], score_id, old, new))
    return tuple(found)


def _plan(db, definition) -> Plan:
    """Score every latest submitted response again (inside the caller's transaction)."""
    done, problems = [], []
    for row in rows(db, LATEST_SUBMITTED_SQL, [definition.id]):
        answers = effective_answers(definition, current_answers(db, row["id"]))
        try:
            clean = validate_answers(
                definition, {k: v for k, v in answers.items() if v is not None}
            )
        except AnswerError as exc:
            problems.append(f"{row['study_code']} {row['timepoint']}: {'; '.join(exc.messages)}")
            continue
        sheet = score(definition, clean)
        changes = _changes(row, {k: v for k, (v, _) in stored_scores(db, row["id"]).items()}, sheet)
        done.append(
            Rescored(
                row["id"],
                row["study_code"],
                row["timepoint"],
                row["definition_version"],
                row["definition_hash"],
                sheet,
                changes,
            )
        )
    if problems:
        shown = "\n  ".join(problems[:SHOWN_PROBLEMS])
        more = len(problems) - SHOWN_PROBLEMS
        raise RescoreError(
            f"{len(problems)} submitted response(s) of {definition.id} have answers that"
            f" version {definition.version} of the definition does not accept, so they cannot"
            f" be scored with it:\n  {shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
            + "\nNothing was stored. Check the definition: a new version should keep the codes"
            " that were answered."
        )
    earlier = tuple(
        rows(
            db,
            "SELECT id, started_at, actor, definition_version, definition_hash, responses,"
            " changed FROM scoring_runs WHERE questionnaire = ? ORDER BY id",
            [definition.id],
        )
    )
    return Plan(definition.id, definition.version, definition.content_hash, tuple(done), earlier)


def _check_request(db, questionnaires: Mapping, questionnaire: str, reason: str, by: str):
    if not (reason or "").strip():
        raise RescoreError("give the reason for re-scoring (--reason), e.g. the corrected rule")
    definition = questionnaires.get(questionnaire)
    if definition is None:
        raise RescoreError(
            f"unknown questionnaire '{questionnaire}' (known: {', '.join(sorted(questionnaires))})"
        )
    account = one(db, "SELECT email, role, disabled_at FROM staff WHERE email = ?", [by.strip()])
    if account is None or account["role"] not in ROLES or account["disabled_at"]:
        raise RescoreError(
            f"{by} is not an active admin or data manager account; re-scoring is done by one"
        )
    return definition, account


def _refuse_empty(plan: Plan, force: bool) -> None:
    if not plan.responses:
        raise RescoreError(f"no submitted responses of {plan.questionnaire}: nothing to re-score")
    if plan.current == len(plan.responses) and not force:
        raise RescoreError(
            f"nothing to re-score: all {len(plan.responses)} submitted response(s) of"
            f" {plan.questionnaire} were scored under this definition (version"
            f" {plan.definition_version}, hash {plan.definition_hash[:12]}); use --force to"
            " store a run anyway"
        )


def rescore(
    db,
    questionnaires: Mapping,
    *,
    questionnaire: str,
    reason: str,
    by: str,
    dry_run: bool = False,
    force: bool = False,
) -> Outcome:
    """Score a questionnaire's submitted responses again with its current definition.

    questionnaires: the definitions the instance serves ({id: Questionnaire}). by: the
    e-mail of an active admin or data manager. A dry run computes and reports, and stores
    nothing (no audit row either). Raises RescoreError, storing nothing, when the request
    cannot run.
    """
    definition, account = _check_request(db, questionnaires, questionnaire, reason, by)
    if dry_run:
        own_snapshot = not db.conn.in_transaction
        if own_snapshot:
            db.conn.execute("BEGIN")  # one consistent read; nothing is written
        try:
            plan = _plan(db, definition)
        finally:
            if own_snapshot and db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
        _refuse_empty(plan, force)
        return Outcome(plan, None)
    with write(db):
        plan = _plan(db, definition)
        _refuse_empty(plan, force)
        run_id = _store(db, plan, account, reason.strip(), force)
    return Outcome(plan, run_id)


def _store(db, plan: Plan, account: dict, reason: str, force: bool) -> int:
    now = stamp()
    changed = len(plan.changes)
    cursor = db.conn.execute(
        "INSERT INTO scoring_runs (started_at, actor, reason, questionnaire, definition_version,"
        " definition_hash, responses, changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now,
            account["email"],
            reason,
            plan.questionnaire,
            plan.definition_version,
            plan.definition_hash,
            len(plan.responses),
            changed,
        ),
    )
    run_id = cursor.lastrowid
    db.conn.executemany(
        "INSERT INTO rescored (run_id, response_id, score, value, reason, definition_version,"
        " definition_hash, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                done.response_id,
                score_id,
                json.dumps(result.value),
                result.reason,
                done.sheet.version,
                done.sheet.content_hash,
                now,
            )
            for done in plan.responses
            for score_id, result in done.sheet.scores.items()
        ],
    )
    audit.record(
        db,
        actor=account["email"],
        role=account["role"],
        action="scores.rescore",
        entity="questionnaire",
        entity_id=plan.questionnaire,
        old={"definitions": plan.stored_definitions()},
        new={
            "run": run_id,
            "definition_version": plan.definition_version,
            "definition_hash": plan.definition_hash,
            "responses": len(plan.responses),
            "changed_responses": plan.changed_responses,
            "changed_values": changed,
            "force": force,
        },
        reason=reason,
        at=now,
    )
    return run_id
