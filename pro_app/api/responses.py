"""Submitted responses with their answers and scores, built as the exports build them.

Each response is an export record (`exports.model.build_record` over the stored answers and
scores), so the API and the files agree on every value: the same latest submitted version,
answers on the display path only, scores with their null reasons.
"""

from __future__ import annotations

from flask import request

from ..catalog import current_catalog
from ..database import get_db
from ..exports.model import ExportRecord, build_record
from ..exports.variables import study_order
from ..services.journal import current_answers
from ..services.scored import stored_scores
from ..storage.db import rows
from .auth import DATA_ROLES, token_route
from .blueprint import bp
from .errors import bad_request, json_response, not_found
from .params import BAD_CURSOR, Query, decode_cursor, marks, page, rank
from .people import participant_filter

# The latest submitted version of each questionnaire at each assessment, as the exports
# choose them (exports/source.py). CROSS JOIN keeps SQLite walking participants by their
# study code index, so a page after a cursor reads from there and stops at the limit.
RESPONSES = """
SELECT p.study_code, p.site, a.timepoint, a.target_day, a.first_day, a.last_day,
       r.id, r.uuid, r.questionnaire, r.version, r.definition_version, r.definition_hash,
       r.status, r.started_at, r.submitted_at, r.source, r.filled_on,
       {timepoint_rank} AS timepoint_rank, {questionnaire_rank} AS questionnaire_rank
FROM participants p
CROSS JOIN assessments a ON a.participant_id = p.id
CROSS JOIN responses r ON r.assessment_id = a.id
WHERE r.status = 'submitted'
  AND r.version = (SELECT MAX(r2.version) FROM responses r2
                   WHERE r2.assessment_id = r.assessment_id
                     AND r2.questionnaire = r.questionnaire
                     AND r2.status = 'submitted')
  AND a.timepoint IN ({timepoints}) AND r.questionnaire IN ({questionnaires})
"""
ORDER = "study_code, timepoint_rank, questionnaire_rank"


def response_json(record: ExportRecord) -> dict:
    return {
        "uuid": record.response_uuid,
        "version": record.response_version,
        "study_code": record.study_code,
        "site": record.site,
        "timepoint": record.timepoint,
        "questionnaire": record.questionnaire,
        "definition_version": record.definition_version,
        "definition_hash": record.definition_hash,
        "status": record.status,
        "source": record.source,
        "started_at": record.started_at,
        "submitted_at": record.submitted_at,
        "submitted_on": record.actual_date,
        "answers": dict(record.items),
        "scores": {
            score: {"value": stored.value, "reason": stored.reason}
            for score, stored in record.scores.items()
        },
    }


def find(
    db,
    catalog,
    *,
    sites=(),
    timepoints=(),
    questionnaires=(),
    participant=None,
    since=None,
    uuid=None,
    after=None,
    limit=None,
) -> list[dict]:
    """Responses (as JSON objects) in export order after a key, up to limit + 1 of them."""
    study = catalog.study
    known_t = [t.id for t in study.timepoints]
    known_q = list(study_order(study))
    t_rank, t_params = rank("a.timepoint", known_t)
    q_rank, q_params = rank("r.questionnaire", known_q)
    chosen_t = [t for t in known_t if not timepoints or t in timepoints]
    chosen_q = [q for q in known_q if not questionnaires or q in questionnaires]
    inner = RESPONSES.format(
        timepoint_rank=t_rank,
        questionnaire_rank=q_rank,
        timepoints=marks(chosen_t),
        questionnaires=marks(chosen_q),
    )
    params = [*t_params, *q_params, *chosen_t, *chosen_q]
    for condition, values in (
        (f"p.site IN ({marks(sites)})", list(sites)),
        ("p.study_code = ?", [participant] if participant is not None else []),
        ("r.submitted_at >= ?", [since] if since else []),
        ("r.uuid = ?", [uuid] if uuid is not None else []),
    ):
        if values:
            inner += f"  AND {condition}\n"
            params += values
    sql = f"SELECT * FROM ({inner})"
    if after is not None:
        sql += f" WHERE ({ORDER}) > (?, ?, ?)"
        params += [after[0], known_t.index(after[1]), known_q.index(after[2])]
    sql += f" ORDER BY {ORDER}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit + 1)
    return [
        response_json(
            build_record(
                participant=row,
                assessment=row,
                response=row,
                answers=current_answers(db, row["id"]),
                scores=stored_scores(db, row["id"]),
                definition=catalog.questionnaires[row["questionnaire"]],
                zone=study.zone,
            )
        )
        for row in rows(db, sql, params)
    ]


@bp.get("/responses", provide_automatic_options=False)
@token_route(*DATA_ROLES)
def responses():
    """Submitted responses (latest version), in study code, timepoint, questionnaire order."""
    query = Query(
        request.args,
        ("site", "timepoint", "questionnaire", "participant", "submitted_since", "limit", "cursor"),
    )
    catalog = current_catalog()
    study = catalog.study
    sites = query.choices("site", [s.id for s in study.sites])
    timepoints = query.choices("timepoint", [t.id for t in study.timepoints])
    questionnaires = query.choices("questionnaire", study_order(study))
    participant = participant_filter(query, study)
    since = query.instant("submitted_since")
    limit = query.limit()
    after = decode_cursor(query.one("cursor"), "responses", 3)
    if after is not None and (
        after[1] not in [t.id for t in study.timepoints] or after[2] not in study_order(study)
    ):
        raise bad_request(BAD_CURSOR)
    found = find(
        get_db(),
        catalog,
        sites=sites,
        timepoints=timepoints,
        questionnaires=questionnaires,
        participant=participant,
        since=since,
        after=after,
        limit=limit,
    )
    key = lambda r: [r["study_code"], r["timepoint"], r["questionnaire"]]  # noqa: E731
    return json_response(page(found, limit, "responses", key))


@bp.get("/responses/<uuid>", provide_automatic_options=False)
@token_route(*DATA_ROLES)
def response(uuid: str):
    """One submitted response by its UUID (the latest version only)."""
    Query(request.args, ())
    db = get_db()
    # Find its participant first: the list query walks participants in study code order.
    owner = rows(
        db,
        "SELECT p.study_code FROM responses r JOIN assessments a ON a.id = r.assessment_id"
        " JOIN participants p ON p.id = a.participant_id WHERE r.uuid = ?",
        [uuid],
    )
    found = owner and find(db, current_catalog(), participant=owner[0]["study_code"], uuid=uuid)
    if not found:
        raise not_found(f"No submitted response with UUID '{uuid}'.")
    return json_response({"data": found[0]})
