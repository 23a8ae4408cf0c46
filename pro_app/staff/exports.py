"""The data manager's export page: start an export job, follow it, download the file; plots."""

from __future__ import annotations

import datetime as dt

from flask import abort, current_app, g, redirect, render_template, request, send_file, url_for
from flask_babel import format_date, format_decimal, get_locale
from flask_babel import gettext as _
from markupsafe import Markup

from ..catalog import current_catalog
from ..database import get_db
from ..exports import plots
from ..exports.model import Filters
from ..exports.source import unknown_values
from ..services import export_jobs, summaries
from ..services.exporting import FORMATS, SUFFIXES, total_records
from ..storage import audit
from ..storage.db import parse_stamp, rows, write
from .access import staff_route, visible_sites
from .blueprint import bp

EXPORTERS = ("admin", "data_manager")
CONTENT_TYPES = {
    ".csv": "text/csv",  # Flask adds the charset (utf-8) to text types
    ".html": "text/html",
    ".json": "application/json",
    ".xml": "application/xml",
    ".sav": "application/x-spss-sav",
    ".dta": "application/x-stata-dta",
}


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


def _form(study) -> tuple[str, Filters, dict]:
    """The format, filters and writer options from the posted form (ValueError if wrong)."""
    fmt = request.form.get("format", "")
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
    semicolons = request.form.get("delimiter") == ";"
    options = {
        "delimiter": ";" if semicolons else ",",
        "bom": semicolons,
        "excel_safe": bool(request.form.get("excel_safe")),
    }
    return fmt, filters, options


@bp.route("/exports", methods=["GET", "POST"])
@staff_route(*EXPORTERS)
def exports():
    """Formats and filters; a POST starts an export job and shows its page. Plots below."""
    catalog = current_catalog()
    study = catalog.study
    db = get_db()
    error = None
    if request.method == "POST":
        try:
            fmt, filters, options = _form(study)
            return _start(db, catalog, fmt, filters, options)
        except ValueError as exc:
            error = str(exc)
    order = {t.id: n for n, t in enumerate(study.timepoints)}
    return render_template(
        "staff/exports.html",
        formats=FORMATS,
        study=study,
        questionnaires=list(catalog.questionnaires),
        counts=sorted(_counts(db), key=lambda r: order.get(r["timepoint"], 99)),
        jobs=export_jobs.recent(db, g.staff["id"], limit=5),
        when=_when,
        fmt=_number,
        plots=_plots(db, catalog),
        error=error,
    ), (400 if error else 200)


def _start(db, catalog, fmt: str, filters: Filters, options: dict):
    database = current_app.config["DATABASE"]
    job_id = export_jobs.create(
        db,
        staff_id=g.staff["id"],
        fmt=fmt,
        filters=filters,
        options=options,
        total=total_records(db, catalog, filters),
        name=f"{catalog.study.id}-{fmt}{SUFFIXES[fmt]}",
    )
    export_jobs.start(
        database,
        catalog,
        job_id,
        folder=export_jobs.folder_for(database),
        base_url=current_app.config["BASE_URL"],
    )
    return redirect(url_for("staff.export_job", job_id=job_id), 303)


def _own_job(job_id: str) -> dict:
    """The job, if this staff member started it (or is an admin); otherwise 404."""
    job = export_jobs.load(get_db(), job_id)
    if job is None or (job["staff_id"] != g.staff["id"] and g.staff["role"] != "admin"):
        abort(404)
    return job


@bp.get("/exports/<job_id>")
@staff_route(*EXPORTERS)
def export_job(job_id: str):
    """How far the export has come. While it runs, app.js fetches this page every 2 s and
    swaps in the new progress; without script, a button updates the page."""
    job = _own_job(job_id)
    active = job["status"] in export_jobs.ACTIVE
    return render_template(
        "staff/export_job.html",
        job=job,
        filters=export_jobs.filters_of(job),
        active=active,
        interrupted=job["error"] == export_jobs.INTERRUPTED,
        when=_when,
    )


@bp.get("/exports/<job_id>/download")
@staff_route(*EXPORTERS)
def export_download(job_id: str):
    """The finished file, with its SHA-256 in a header; each download is audited."""
    job = _own_job(job_id)
    folder = export_jobs.folder_for(current_app.config["DATABASE"])
    path = export_jobs.file_path(folder, job)
    if job["status"] != "done" or not path.is_file():
        abort(404)
    db = get_db()
    with write(db):
        audit.record(
            db,
            actor=g.staff["email"],
            role=g.staff["role"],
            action="export.download",
            entity="export",
            entity_id=job["file_name"],
            new={"job": job["id"], "sha256": job["sha256"], "rows": job["rows"]},
        )
    response = send_file(
        path,
        as_attachment=True,
        download_name=job["file_name"],
        mimetype=CONTENT_TYPES[SUFFIXES[job["format"]]],
        max_age=0,
    )
    response.headers["X-Content-SHA256"] = job["sha256"]
    response.headers["Cache-Control"] = "no-store"
    return response


def _when(text: str | None) -> str:
    """A stored UTC time as «3. mars 2026 kl. 14.30» (Europe/Oslo)."""
    if not text:
        return ""
    moment = parse_stamp(text).astimezone(current_catalog().study.zone)
    clock = moment.strftime("%H.%M" if str(get_locale()) == "nb" else "%H:%M")
    return _("%(date)s at %(time)s", date=format_date(moment, "long", rebase=False), time=clock)


def _local(text) -> str:
    return getattr(text, str(get_locale()), None) or text.nb


def _number(value) -> str:
    return format_decimal(round(value, 1), format="#,##0.#")


def _plots(db, catalog) -> dict | None:
    """Each score of one questionnaire per timepoint; one score's mean per site over time."""
    choices = summaries.score_choices(catalog)
    if not choices:
        return None
    by_questionnaire: dict[str, list] = {}
    for choice in choices:
        by_questionnaire.setdefault(choice.questionnaire, []).append(choice)
    asked = request.args.get("questionnaire")
    questionnaire = asked if asked in by_questionnaire else next(iter(by_questionnaire))
    keyed = {c.key: c for c in choices}
    over_time = keyed.get(request.args.get("score", "")) or next(
        (c for c in choices if len(c.timepoints) > 1), choices[0]
    )
    sites = visible_sites(g.staff, catalog.study)
    return {
        "questionnaires": [
            (q, _local(c[0].questionnaire_title)) for q, c in by_questionnaire.items()
        ],
        "questionnaire": questionnaire,
        "choices": [(c.key, _choice_name(c)) for c in choices],
        "score": over_time.key,
        "distributions": [
            _distribution(db, choice, sites, n)
            for n, choice in enumerate(by_questionnaire[questionnaire])
        ],
        "lines": _lines(db, over_time, sites),
    }


def _choice_name(choice) -> str:
    return f"{_local(choice.questionnaire_title)}: {_local(choice.label)}"


def _distribution(db, choice, sites, number: int) -> dict:
    found = summaries.score_values(db, choice.questionnaire, choice.score, sites)
    groups = summaries.per_timepoint(found, choice.timepoints)
    name = _choice_name(choice)
    title = _("Distribution per timepoint: %(score)s", score=name)
    svg = plots.distribution_svg(
        f"plot-spread-{number}",
        title,
        _(
            "Box plot of %(score)s for each timepoint: the box spans the middle half of the"
            " values, the thick line is the median, the thin line runs from the lowest to the"
            " highest value. Fewer than five values are shown as dots. The numbers are in the"
            " table below.",
            score=name,
        ),
        choice.timepoints,
        groups,
        fmt=_number,
        no_data=_("No responses"),
    )
    return {
        "name": name,
        "title": title,
        "svg": Markup(svg),  # plots.py escapes every text it writes
        "rows": [(t, plots.summarise(g)) for t, g in zip(choice.timepoints, groups, strict=True)],
    }


def _lines(db, choice, sites) -> dict:
    found = summaries.score_values(db, choice.questionnaire, choice.score, sites)
    grouped = summaries.per_site(found, sites, choice.timepoints)
    table = {
        site: [(plots.mean(g), len(plots.numbers(g))) for g in groups]
        for site, groups in grouped.items()
    }
    series = [
        (site, [m for m, _n in cells]) for site, cells in table.items() if any(n for _m, n in cells)
    ]
    name = _choice_name(choice)
    title = _("Mean per site and timepoint: %(score)s", score=name)
    svg = plots.lines_svg(
        "plot-mean",
        title,
        _(
            "Line chart of the mean of %(score)s at each timepoint, one line per site, each with"
            " its own marker and dash. The numbers are in the table below.",
            score=name,
        ),
        choice.timepoints,
        series,
        fmt=_number,
        no_data=_("No responses"),
    )
    return {
        "name": name,
        "title": title,
        "svg": Markup(svg),  # plots.py escapes every text it writes
        "timepoints": choice.timepoints,
        "table": table,
    }
