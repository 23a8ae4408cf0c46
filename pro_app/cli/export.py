"""`flask export`: scored data and the codebook, written atomically, with a SHA-256."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..catalog import catalog_for
from ..domain.errors import DefinitionError
from ..exports.model import Filters
from ..exports.source import unknown_values
from ..services.exporting import FORMATS, prepare, record, redcap_companions, write_file
from .common import upgraded_db


def _day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.ClickException(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="What to write.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write ('-' for standard output).",
)
@click.option("--timepoint", multiple=True, help="Only this timepoint (repeatable).")
@click.option("--site", multiple=True, help="Only this site (repeatable).")
@click.option("--questionnaire", multiple=True, help="Only this questionnaire (repeatable).")
@click.option("--from", "date_from", metavar="DATE", help="Submitted on or after (YYYY-MM-DD).")
@click.option("--to", "date_to", metavar="DATE", help="Submitted on or before (YYYY-MM-DD).")
@click.option(
    "--include-partial", is_flag=True, help="Also responses in progress (status=partial)."
)
@click.option(
    "--delimiter",
    type=click.Choice([",", ";"]),
    default=",",
    show_default=True,
    help="';' for Norwegian Excel.",
)
@click.option("--bom/--no-bom", default=False, show_default=True, help="Start with a UTF-8 BOM.")
@click.option(
    "--language",
    type=click.Choice(["nb", "en"]),
    default="nb",
    show_default=True,
    help="Language of variable and value labels (sav, dta).",
)
@click.option(
    "--all-versions",
    is_flag=True,
    help="csv-long: every version of a corrected response (response_version tells them "
    "apart; the highest is current), not only the newest.",
)
@click.option(
    "--excel-safe",
    is_flag=True,
    help="CSV: start cells that look like a formula (=, +, -, @) with a quote, for Excel.",
)
@with_appcontext
def export_command(
    fmt,
    output,
    timepoint,
    site,
    questionnaire,
    date_from,
    date_to,
    include_partial,
    delimiter,
    bom,
    language,
    all_versions,
    excel_safe,
):
    """Export scored data or the codebook to FILE.

    Formats: csv-wide (one row per participant and timepoint), csv-long (one row per
    answer and score), codebook (CSV, one row per variable), codebook-html, odm (CDISC
    ODM 1.3.2 snapshot: metadata and clinical data), fhir (a Bundle of
    QuestionnaireResponses, R4), fhir-questionnaires (a Bundle of Questionnaires),
    redcap-dictionary (with -events.csv and -mappings.csv beside it), redcap-records (an
    import file, one row per participant and event), sav and dta (SPSS and Stata, the wide
    shape; declined and not applicable as user-missing -7/-8, or .a/.b), audit-csv and
    audit-json (the audit trail, after checking its hash chain), signatures (investigators'
    sign-offs, with whether each still covers the current responses). Dates are Oslo
    calendar days; a partial response is dated by its start. Contact details are never
    exported.
    """
    try:
        catalog = catalog_for(current_app)
    except DefinitionError as exc:
        raise click.ClickException(
            "the definitions have problems; run 'flask --app pro_app questionnaires check'"
        ) from exc
    filters = Filters(
        timepoints=tuple(timepoint),
        sites=tuple(site),
        questionnaires=tuple(questionnaire),
        date_from=_day(date_from, "--from"),
        date_to=_day(date_to, "--to"),
        include_partial=include_partial,
        all_versions=all_versions,
    )
    problems = unknown_values(filters, catalog.study)
    if problems:
        raise click.ClickException("; ".join(problems))
    db = upgraded_db()
    try:
        prepared = prepare(
            fmt,
            db,
            catalog,
            filters,
            delimiter=delimiter,
            bom=bom,
            language=language,
            base_url=current_app.config["BASE_URL"],
            excel_safe=excel_safe,
        )
        if prepared.note:
            click.echo(prepared.note, err=True)
        if output == "-":
            if prepared.binary:
                raise click.ClickException(f"{fmt} is a binary file: give a file name with -o")
            count = prepared.write(sys.stdout)
            record(
                db,
                fmt=fmt,
                filters=filters,
                name="-",
                count=count,
                sha=None,
                actor="cli",
                role="admin",
            )
            click.echo(f"{count} rows", err=True)
            return
        count, sha = write_file(Path(output), prepared)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise click.ClickException(
            f"cannot read the database ({exc}); run 'flask --app pro_app db upgrade'"
        ) from exc
    record(
        db,
        fmt=fmt,
        filters=filters,
        name=Path(output).name,
        count=count,
        sha=sha,
        actor="cli",
        role="admin",
    )
    click.echo(f"Wrote {count} rows to {output}")
    click.echo(f"SHA-256 {sha}")
    if fmt == "redcap-dictionary":
        for path, rows, digest in redcap_companions(Path(output), catalog):
            click.echo(f"Wrote {rows} rows to {path} (SHA-256 {digest})")
