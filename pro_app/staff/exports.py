"""The data manager's export page: choose a format and filters, download the file."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from flask import current_app, g, render_template, request, send_file
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..database import get_db
from ..exports.model import Filters
from ..exports.source import unknown_values
from ..services.exporting import FORMATS, SUFFIXES, prepare, record, write_file
from ..storage.db import rows
from .access import staff_route
from .blueprint import bp

EXPORTERS = ("admin", "data_manager")


def _counts(db) -> list[dict]:
    return rows(
        db,
        "SELECT a.timepoint, SUM(r.status = 'submitted') AS submitted,"
        " SUM(r.status = 'in_progress') AS partial FROM responses r"
        " JOIN assessments a ON a.id = r.assessment_id GROUP BY a.timepoint",
    )


def _choice(name: str) -> tuple[str, ...]:
    value = request.form.get(name, "").strip()
    return (value,) if value else ()


def _date(name: str):
    value = request.form.get(name, "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(_("Write the dates as YYYY-MM-DD.")) from exc


@bp.route("/exports", methods=["GET", "POST"])
@staff_route(*EXPORTERS)
def exports():
    """Formats and filters; a POST downloads the file (and the audit log records it)."""
    catalog = current_catalog()
    study = catalog.study
    db = get_db()
    order = {t.id: n for n, t in enumerate(study.timepoints)}
    counts = sorted(_counts(db), key=lambda r: order.get(r["timepoint"], 99))
    error = None
    if request.method == "POST":
        fmt = request.form.get("format", "")
        try:
            if fmt not in FORMATS:
                raise ValueError(_("Choose a format."))
            filters = Filters(
                timepoints=_choice("timepoint"),
                sites=_choice("site"),
                questionnaires=_choice("questionnaire"),
                date_from=_date("from"),
                date_to=_date("to"),
                include_partial=bool(request.form.get("partial")),
            )
            problems = unknown_values(filters, study)
            if problems:
                raise ValueError("; ".join(problems))
            return _download(db, catalog, fmt, filters)
        except ValueError as exc:
            error = str(exc)
    return render_template(
        "staff/exports.html",
        formats=FORMATS,
        study=study,
        questionnaires=list(catalog.questionnaires),
        counts=counts,
        error=error,
    ), (400 if error else 200)


def _download(db, catalog, fmt: str, filters: Filters):
    prepared = prepare(
        fmt,
        db,
        catalog,
        filters,
        delimiter=";" if request.form.get("delimiter") == ";" else ",",
        bom=request.form.get("delimiter") == ";",
        base_url=current_app.config["BASE_URL"],
    )
    folder = Path(tempfile.mkdtemp(prefix="pro-export-"))
    name = f"{catalog.study.id}-{fmt}{SUFFIXES[fmt]}"
    path = folder / name
    count, sha = write_file(path, prepared)
    record(
        db,
        fmt=fmt,
        filters=filters,
        name=name,
        count=count,
        sha=sha,
        actor=g.staff["email"],
        role=g.staff["role"],
    )
    response = send_file(path, as_attachment=True, download_name=name, max_age=0)
    response.headers["X-Content-SHA256"] = sha
    response.headers["Cache-Control"] = "no-store"

    def clean_up() -> None:
        path.unlink(missing_ok=True)
        os.rmdir(folder)

    response.call_on_close(clean_up)
    return response
