"""Participants (pseudonymous: never contact details) and their assessments with states."""

from __future__ import annotations

from flask import request

from ..catalog import current_catalog
from ..database import get_db
from ..domain.schedule import STATES
from ..services.assessments import to_domain
from ..storage.db import rows, utc_now
from .auth import EVERY_ROLE, token_route, visible_sites
from .blueprint import bp
from .errors import ApiError, bad_request, json_response, not_found
from .params import BAD_CURSOR, Query, decode_cursor, marks, page, rank

STATUSES = ("active", "withdrawn", "completed")
BATCH = 500  # assessments read per query while filling a page filtered by state
# Only these columns leave the participants table: contact details live elsewhere anyway.
PARTICIPANT = "p.study_code, p.site, p.language, p.enrolled_on, p.day0, p.status"


def participant_json(row: dict) -> dict:
    return {
        "study_code": row["study_code"],
        "site": row["site"],
        "language": row["language"],
        "enrolled_on": row["enrolled_on"],
        "day0": row["day0"],
        "status": row["status"],
    }


def assessment_json(row: dict, state: str) -> dict:
    return {
        "study_code": row["study_code"],
        "site": row["site"],
        "timepoint": row["timepoint"],
        "target_day": row["target_day"],
        "first_day": row["first_day"],
        "last_day": row["last_day"],
        "state": state,
        "completed_at": row["completed_at"],
        "receipt_code": row["receipt_code"],
    }


def participant_filter(query: Query, study) -> str | None:
    """The 'participant' filter: a study code of this study's pattern (else a 400)."""
    code = query.one("participant")
    if code is not None and not (code.isascii() and study.code_is_valid(code)):
        raise bad_request(f"'participant' must be a study code matching {study.code_pattern}.")
    return code


def chosen_sites(query: Query) -> tuple[str, ...]:
    """The sites asked for (all this token sees when none); another site's is a 403."""
    study = current_catalog().study
    asked = query.choices("site", [s.id for s in study.sites])
    visible = visible_sites()
    outside = [s for s in asked if s not in visible]
    if outside:
        raise ApiError(
            403,
            "forbidden",
            f"This token does not see site {outside[0]}"
            f" (it sees: {', '.join(visible) or 'no site'}).",
        )
    return asked or visible


@bp.get("/participants", provide_automatic_options=False)
@token_route(*EVERY_ROLE)
def participants():
    """Participants of the token's sites, by study code."""
    query = Query(request.args, ("site", "status", "limit", "cursor"))
    sites = chosen_sites(query)
    statuses = query.choices("status", STATUSES)
    limit = query.limit()
    after = decode_cursor(query.one("cursor"), "participants", 1)
    if not sites:
        return json_response({"data": [], "next_cursor": None})
    sql = f"SELECT {PARTICIPANT} FROM participants p WHERE p.site IN ({marks(sites)})"
    params: list = list(sites)
    if statuses:
        sql += f" AND p.status IN ({marks(statuses)})"
        params += statuses
    if after:
        sql += " AND p.study_code > ?"
        params += after
    found = rows(get_db(), sql + " ORDER BY p.study_code LIMIT ?", [*params, limit + 1])
    items = [participant_json(r) for r in found]
    return json_response(page(items, limit, "participants", lambda p: [p["study_code"]]))


def _started(db, ids: list[int]) -> set[int]:
    """Assessments with anything saved (as the staff overview counts them)."""
    if not ids:
        return set()
    return {
        r["assessment_id"]
        for r in rows(
            db,
            "SELECT DISTINCT r.assessment_id FROM responses r JOIN answers a"
            f" ON a.response_id = r.id WHERE r.assessment_id IN ({marks(ids)})",
            ids,
        )
    }


def _with_states(db, study, found: list[dict], now) -> list[tuple[dict, str]]:
    """Each assessment row with its state now (the domain's rule, as on the staff pages)."""
    started = _started(db, [r["id"] for r in found])
    return [
        (
            row,
            to_domain(row, study).state(
                now, completed=bool(row["completed_at"]), started=row["id"] in started
            ),
        )
        for row in found
    ]


def assessment_rows(
    db, study, *, sites, timepoints=(), states=(), participant=None, after=None, limit=None
) -> list[tuple[dict, str]]:
    """(row, state) in (study code, protocol timepoint) order, after a key, up to limit."""
    known = [t.id for t in study.timepoints]
    chosen = [t for t in known if not timepoints or t in timepoints]
    order, order_params = rank("a.timepoint", known)
    inner = (
        f"SELECT a.*, p.study_code, p.site, {order} AS rank FROM assessments a"
        f" JOIN participants p ON p.id = a.participant_id"
        f" WHERE p.site IN ({marks(sites)}) AND a.timepoint IN ({marks(chosen)})"
    )
    params = [*order_params, *sites, *chosen]
    if participant is not None:
        inner += " AND p.study_code = ?"
        params.append(participant)
    now = utc_now()
    key = None if after is None else (after[0], known.index(after[1]))
    result: list[tuple[dict, str]] = []
    while limit is None or len(result) <= limit:
        sql = f"SELECT * FROM ({inner})"
        extra: list = []
        if key is not None:
            sql += " WHERE (study_code, rank) > (?, ?)"
            extra = list(key)
        batch = rows(db, sql + " ORDER BY study_code, rank LIMIT ?", [*params, *extra, BATCH])
        for row, state in _with_states(db, study, batch, now):
            if not states or state in states:
                result.append((row, state))
        if len(batch) < BATCH:
            break
        key = (batch[-1]["study_code"], batch[-1]["rank"])
    return result if limit is None else result[: limit + 1]


@bp.get("/participants/<study_code>", provide_automatic_options=False)
@token_route(*EVERY_ROLE)
def participant(study_code: str):
    """One participant of the token's sites, with the assessments of their schedule."""
    Query(request.args, ())
    db, study = get_db(), current_catalog().study
    sites = visible_sites()
    found = rows(
        db, f"SELECT {PARTICIPANT} FROM participants p WHERE p.study_code = ?", [study_code]
    )
    if not found or found[0]["site"] not in sites:
        # The same answer for another site's participant: do not confirm that they exist.
        raise not_found(f"No participant '{study_code}' at the sites this token sees.")
    person = participant_json(found[0])
    schedule = assessment_rows(db, study, sites=sites, participant=study_code)
    person["assessments"] = [assessment_json(row, state) for row, state in schedule]
    return json_response({"data": person})


@bp.get("/assessments", provide_automatic_options=False)
@token_route(*EVERY_ROLE)
def assessments():
    """Every participant × timepoint of the token's sites: window, state, completion."""
    query = Query(request.args, ("participant", "site", "timepoint", "state", "limit", "cursor"))
    study = current_catalog().study
    sites = chosen_sites(query)
    timepoints = query.choices("timepoint", [t.id for t in study.timepoints])
    states = query.choices("state", STATES)
    participant_code = participant_filter(query, study)
    limit = query.limit()
    after = decode_cursor(query.one("cursor"), "assessments", 2)
    if after is not None and after[1] not in [t.id for t in study.timepoints]:
        raise bad_request(BAD_CURSOR)
    if not sites:
        return json_response({"data": [], "next_cursor": None})
    found = assessment_rows(
        get_db(),
        study,
        sites=sites,
        timepoints=timepoints,
        states=states,
        participant=participant_code,
        after=after,
        limit=limit,
    )
    items = [assessment_json(row, state) for row, state in found]
    return json_response(
        page(items, limit, "assessments", lambda a: [a["study_code"], a["timepoint"]])
    )
