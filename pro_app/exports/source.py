"""Records from the database, lazily: the only export module that reads SQL.

Responses are read with one cursor in export order (study code, protocol timepoint order,
protocol questionnaire order); answers and scores are fetched per response, so memory
stays flat however many responses there are. The whole read runs in one read transaction
(a consistent snapshot) when no transaction is open already.

Responses come grouped by participant × timepoint, so the assessment's values (receipt code,
derived values) are made once per group: the derived values from the stored scores of that
assessment's submitted responses, with one query, and only where the timepoint has any.
They are computed from every submitted response of the assessment, also those the filters
leave out (a derived value is a fact about the participant, not about the file).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..domain.derived import inputs
from ..services.journal import current_answers, decode
from ..services.scored import stored_scores
from .model import ExportRecord, Filters, assessment_values, build_record, day_bounds
from .variables import derived_rules, study_order

RESPONSE_SQL = """
SELECT p.study_code, p.site, a.timepoint, a.target_day, a.first_day, a.last_day,
       a.id AS assessment_id, a.receipt_code,
       r.id, r.uuid, r.questionnaire, r.version, r.definition_version, r.definition_hash,
       r.status, r.started_at, r.submitted_at, r.source, r.filled_on
FROM responses r
JOIN assessments a ON a.id = r.assessment_id
JOIN participants p ON p.id = a.participant_id
WHERE r.status IN ({statuses})
  AND a.timepoint IN ({timepoints})
  AND r.questionnaire IN ({questionnaires})
  {latest}
  {where}
ORDER BY p.study_code, {timepoint_rank}, {questionnaire_rank}, r.version
"""


LATEST = """AND r.version = (SELECT MAX(r2.version) FROM responses r2
                   WHERE r2.assessment_id = r.assessment_id
                     AND r2.questionnaire = r.questionnaire
                     AND r2.status IN ({statuses}))"""


def _marks(values) -> str:
    return ", ".join("?" for _ in values)


def _rank(column: str, ids) -> str:
    cases = " ".join("WHEN ? THEN ?" for _ in ids)
    return f"CASE {column} {cases} END"


def unknown_values(filters: Filters, study) -> list[str]:
    """Return a message per filter value the study does not know (listing the known ones)."""
    known = {
        "timepoint": ([t.id for t in study.timepoints], filters.timepoints),
        "site": ([s.id for s in study.sites], filters.sites),
        "questionnaire": (list(study_order(study)), filters.questionnaires),
    }
    problems = []
    for name, (ids, given) in known.items():
        for value in given:
            if value not in ids:
                problems.append(f"unknown {name} '{value}' (known: {', '.join(ids)})")
    for option, day in (("--from", filters.date_from), ("--to", filters.date_to)):
        if day is not None and not 1900 <= day.year <= 2999:
            problems.append(f"{option} {day} is outside the years 1900-2999; give a real date")
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        problems.append(f"--from {filters.date_from} is after --to {filters.date_to}")
    return problems


def _query(filters: Filters, study) -> tuple[str, list]:
    statuses = ["submitted", "in_progress"] if filters.include_partial else ["submitted"]
    timepoints = [t.id for t in study.timepoints]
    questionnaires = list(study_order(study))
    chosen_t = [t for t in timepoints if not filters.timepoints or t in filters.timepoints]
    chosen_q = [
        q for q in questionnaires if not filters.questionnaires or q in filters.questionnaires
    ]
    where, extra = [], []
    if filters.sites:
        where.append(f"AND p.site IN ({_marks(filters.sites)})")
        extra.extend(filters.sites)
    start, end = day_bounds(filters.date_from, filters.date_to, study.zone)
    # A partial response has no submission time: its start time decides.
    if start:
        where.append("AND COALESCE(r.submitted_at, r.started_at) >= ?")
        extra.append(start)
    if end:
        where.append("AND COALESCE(r.submitted_at, r.started_at) < ?")
        extra.append(end)
    sql = RESPONSE_SQL.format(
        statuses=_marks(statuses),
        timepoints=_marks(chosen_t),
        questionnaires=_marks(chosen_q),
        latest="" if filters.all_versions else LATEST.format(statuses=_marks(statuses)),
        where="\n  ".join(where),
        timepoint_rank=_rank("a.timepoint", timepoints),
        questionnaire_rank=_rank("r.questionnaire", questionnaires),
    )
    latest = [] if filters.all_versions else statuses
    params = [*statuses, *chosen_t, *chosen_q, *latest, *extra]
    params += [x for n, t in enumerate(timepoints) for x in (t, n)]
    params += [x for n, q in enumerate(questionnaires) for x in (q, n)]
    return sql, params


STORED_SCORES_SQL = """
SELECT r.questionnaire, s.score, s.value, s.reason
FROM responses r
JOIN scores s ON s.response_id = r.id
WHERE r.assessment_id = ? AND r.status = 'submitted' AND r.questionnaire IN ({questionnaires})
  AND r.version = (SELECT MAX(r2.version) FROM responses r2
                   WHERE r2.assessment_id = r.assessment_id
                     AND r2.questionnaire = r.questionnaire
                     AND r2.status = 'submitted')
ORDER BY r.questionnaire, s.score
"""


def _stored_scores(db, assessment_id: int, questionnaires: list[str]) -> dict:
    """{questionnaire: {score: (value, reason)}} of the assessment's submitted responses."""
    sql = STORED_SCORES_SQL.format(questionnaires=_marks(questionnaires))
    found: dict[str, dict] = {}
    for questionnaire, score, value, reason in db.conn.execute(
        sql, [assessment_id, *questionnaires]
    ):
        found.setdefault(questionnaire, {})[score] = (decode(value), reason)
    return found


def _assessment(db, row: dict, rules: tuple):
    here = [rule for rule in rules if rule.timepoint == row["timepoint"]]
    needed = sorted(set().union(*(inputs(rule) for rule in here)))
    stored = _stored_scores(db, row["assessment_id"], needed) if needed else {}
    return assessment_values(row["receipt_code"], here, stored)


def records(db, catalog, filters: Filters) -> Iterator[ExportRecord]:
    """Yield the export records that pass the filters, in export order."""
    study = catalog.study
    sql, params = _query(filters, study)
    own_snapshot = not db.conn.in_transaction
    if own_snapshot:
        db.conn.execute("BEGIN")
    try:
        rules = derived_rules(study, filters.questionnaires)
        cursor = db.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        current = values = None
        for found in cursor:
            row = dict(zip(names, found, strict=True))
            if row["assessment_id"] != current:
                current, values = row["assessment_id"], _assessment(db, row, rules)
            yield build_record(
                participant=row,
                assessment=row,
                response=row,
                answers=current_answers(db, row["id"]),
                scores=stored_scores(db, row["id"]),
                definition=catalog.questionnaires[row["questionnaire"]],
                zone=study.zone,
                values=values,
            )
    finally:
        if own_snapshot and db.conn.in_transaction:
            db.conn.execute("COMMIT")


def count_records(db, catalog, filters: Filters) -> int:
    """Return how many records records() would yield for filters."""
    sql, params = _query(filters, catalog.study)
    inner = sql.split("ORDER BY")[0]
    return db.conn.execute(
        f"SELECT COUNT(*) FROM ({inner})", params[: inner.count("?")]
    ).fetchone()[0]
