"""Double data entry of a paper form: two staff members enter it independently, the
differences are listed, and either resolves each before one response is submitted. Both
entries and every resolution are kept (append-only) and audited."""

from __future__ import annotations

import datetime as dt
import json

from ..paper.compare import FILLED_ON, agreed, differences
from ..paper.layout import paper_form
from ..storage import audit
from ..storage.db import one, stamp, write
from .journal import encode
from .paper import (
    Paper,
    PaperError,
    Target,
    _finish,
    _used,
    check_dates,
    check_open,
    entries,
    resolutions,
    submitted_response,
)


def _stored(entry: dict) -> dict:
    return {**entry["answers"], FILLED_ON: entry["filled_on"]}


def compare(db, target: Target) -> list:
    """The differences between entry 1 and entry 2 (PaperError when one is missing)."""
    made = entries(db, *target.key)
    if len(made) < 2:
        raise PaperError("no_entries")
    return differences(paper_form(target.definition).numbers, _stored(made[0]), _stored(made[1]))


def _add_entry(db, target: Target, answers: dict, filled_on, reason: str, save_id: str) -> int:
    """Keep one entry (inside the caller's transaction); return its number."""
    made = entries(db, *target.key)
    if len(made) >= 2:
        raise PaperError("entries_done")
    if made and made[0]["staff"] == target.staff["email"]:
        raise PaperError("same_staff")
    number, now = len(made) + 1, stamp()
    definition = target.definition
    db.execute(
        "INSERT INTO paper_entries (assessment_id, questionnaire, entry, save_id, staff, answers,"
        " filled_on, reason, definition_version, definition_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*target.key, number, save_id, target.staff["email"])
        + (json.dumps(answers, sort_keys=True, ensure_ascii=False), filled_on.isoformat())
        + (reason or None, definition.version, definition.content_hash, now),
    )
    audit.record(
        db,
        actor=target.staff["email"],
        role=target.staff["role"],
        action="paper.entry",
        entity="paper_form",
        entity_id=target.subject,
        field=f"entry {number}",
        new={"filled_on": filled_on.isoformat(), "answers": answers},
        reason=reason or None,
        at=now,
    )
    return number


def enter_double(db, target: Target, answers: dict, *, filled_on, reason, today, save_id) -> dict:
    """Keep one independent entry (1, or 2 by another staff member).

    Returns {"entry": n, "differences": [...] (after entry 2), "outcome": submit's outcome
    when the two entries agree in everything (the response is then made at once)}.
    """
    if not target.study.paper.double_entry:
        raise PaperError("no_double_entry")
    check_dates(target.study, target.assessment, filled_on, reason, today)
    reason = (reason or "").strip()
    with write(db):
        repeated = one(db, "SELECT entry FROM paper_entries WHERE save_id = ?", [save_id])
        if repeated:
            number = repeated["entry"]
        else:
            check_open(db, target)
            number = _add_entry(db, target, answers, filled_on, reason, save_id)
    result = {"entry": number, "differences": [], "outcome": None}
    if number == 2:
        result["differences"] = compare(db, target)
        if not result["differences"] and not submitted_response(db, *target.key):
            result["outcome"] = _finish_double(db, target, save_id)
    return result


def _finish_double(db, target: Target, submission_id: str) -> dict:
    """Make the response from the answers both entries agree on and the resolved ones."""
    made = entries(db, *target.key)
    first = _stored(made[0])
    answers = agreed(first, _stored(made[1]))
    chosen = resolutions(db, *target.key)
    answers.update({k: v for k, v in chosen.items() if k != FILLED_ON and v is not None})
    reasons = dict.fromkeys(e["reason"] for e in made if e["reason"])
    paper = Paper(
        ",".join(e["staff"] for e in made),
        chosen.get(FILLED_ON) or first[FILLED_ON],
        "; ".join(reasons),
        True,
    )
    ordered = {i.id: answers[i.id] for i in target.definition.items if i.id in answers}
    return _finish(db, target, ordered, paper, submission_id)


def resolve(db, target: Target, chosen: dict, *, today: dt.date, submission_id: str) -> dict:
    """Record the value chosen for each difference, then make and submit the response.

    chosen: {item: value} for the differing items still asked (and FILLED_ON as YYYY-MM-DD
    when the days differ), read with the form's validation. Only one of the two staff
    members who entered the form may resolve. A value once recorded is kept.
    """
    if _used(db, submission_id):
        return _finish_double(db, target, submission_id)  # a repeated post
    made = entries(db, *target.key)
    if len(made) < 2:
        raise PaperError("no_entries")
    if target.staff["email"] not in {e["staff"] for e in made}:
        raise PaperError("not_entrant")
    filled_on = dt.date.fromisoformat(chosen.get(FILLED_ON, made[0]["filled_on"]))
    reasons = "; ".join(e["reason"] for e in made if e["reason"])
    check_dates(target.study, target.assessment, filled_on, reasons, today)
    listed = compare(db, target)
    with write(db):
        check_open(db, target)
        now = stamp()
        done = resolutions(db, *target.key)
        for difference in listed:
            if difference.item in done:
                continue
            value = chosen.get(difference.item)
            db.execute(
                "INSERT INTO paper_resolutions (assessment_id, questionnaire, item, value, staff,"
                " at) VALUES (?, ?, ?, ?, ?, ?)",
                (*target.key, difference.item, encode(value), target.staff["email"], now),
            )
            audit.record(
                db,
                actor=target.staff["email"],
                role=target.staff["role"],
                action="paper.resolve",
                entity="paper_form",
                entity_id=target.subject,
                field=difference.item,
                old={"entry 1": difference.first, "entry 2": difference.second},
                new=value,
                at=now,
            )
    return _finish_double(db, target, submission_id)
