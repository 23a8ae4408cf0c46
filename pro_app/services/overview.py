"""The completion overview: every participant's assessments and their states, at once."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from .assessments import to_domain


def matrix(db, study, sites, now: dt.datetime) -> dict:
    """Return {rows: [{participant, states: {timepoint: state}}], counts: {tp: Counter}}."""
    if not sites:
        return {"rows": [], "counts": {}, "timepoints": []}
    marks = ",".join("?" for _ in sites)
    people = list(
        db.query(
            f"SELECT * FROM participants WHERE site IN ({marks}) ORDER BY study_code", list(sites)
        )
    )
    started = {
        r["assessment_id"]
        for r in db.query(
            "SELECT DISTINCT r.assessment_id FROM responses r"
            " JOIN answers a ON a.response_id = r.id"
        )
    }
    invited = {
        r["assessment_id"]: r
        for r in db.query(
            "SELECT assessment_id, MAX(first_used_at IS NOT NULL) AS opened FROM invites"
            " GROUP BY assessment_id"
        )
    }
    by_person: dict[int, dict] = {}
    for row in db.query(
        f"SELECT a.* FROM assessments a JOIN participants p ON p.id = a.participant_id"
        f" WHERE p.site IN ({marks})",
        list(sites),
    ):
        domain = to_domain(row, study)
        state = domain.state(now, completed=bool(row["completed_at"]), started=row["id"] in started)
        by_person.setdefault(row["participant_id"], {})[row["timepoint"]] = {
            "state": state,
            "invited": row["id"] in invited,
            "opened": bool(invited.get(row["id"], {}).get("opened")),
            "last_day": row["last_day"],
            "target": row["target_day"],
        }
    counts: dict[str, Counter] = {t.id: Counter() for t in study.timepoints}
    rows = []
    for person in people:
        cells = by_person.get(person["id"], {})
        for timepoint, cell in cells.items():
            counts[timepoint][cell["state"]] += 1
            counts[timepoint]["invited"] += cell["invited"]
            counts[timepoint]["opened"] += cell["opened"]
        rows.append({"participant": person, "cells": cells})
    return {"rows": rows, "counts": counts, "timepoints": [t.id for t in study.timepoints]}
