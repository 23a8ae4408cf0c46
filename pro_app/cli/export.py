"""`flask export`: scored data and the codebook, written atomically, with a SHA-256."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..catalog import catalog_for
from ..database import get_db
from ..domain.errors import DefinitionError
from ..exports.codebook import write_codebook_csv, write_codebook_html
from ..exports.csv_writers import wide_layout, write_long, write_wide
from ..exports.model import Filters
from ..exports.source import records, unknown_values
from ..exports.variables import catalog_order
from ..storage import audit
from ..storage.db import write as write_transaction

FORMATS = ("csv-wide", "csv-long", "codebook", "codebook-html")


def _day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.ClickException(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


def _writer(fmt: str, catalog, filters: Filters, delimiter: str, bom: bool):
    """Return a function that writes the export to a text stream and returns its row count."""
    study = catalog.study
    chosen = [
        catalog.questionnaires[q]
        for q in catalog_order(catalog)
        if not filters.questionnaires or q in filters.questionnaires
    ]
    if fmt == "codebook":
        return lambda out: write_codebook_csv(out, chosen, delimiter=delimiter, bom=bom)
    if fmt == "codebook-html":
        title = f"Kodebok – {study.title.nb}"
        return lambda out: write_codebook_html(out, chosen, title)
    db = get_db()
    if fmt == "csv-long":
        return lambda out: write_long(
            out, records(db, catalog, filters), delimiter=delimiter, bom=bom
        )
    layout = wide_layout(study, catalog.questionnaires, filters.questionnaires)
    return lambda out: write_wide(
        out, records(db, catalog, filters), layout, delimiter=delimiter, bom=bom
    )


def _write_file(path: Path, write) -> tuple[int, str]:
    """Write to a temporary file beside path, then rename: never half a file."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as out:
            count = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    digest = hashlib.sha256()
    with open(path, "rb") as done:
        for chunk in iter(lambda: done.read(1 << 20), b""):
            digest.update(chunk)
    return count, digest.hexdigest()


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
@with_appcontext
def export_command(
    fmt, output, timepoint, site, questionnaire, date_from, date_to, include_partial, delimiter, bom
):
    """Export scored data or the codebook to FILE.

    Formats: csv-wide (one row per participant and timepoint), csv-long (one row per
    answer and score), codebook (CSV, one row per variable), codebook-html. Dates are
    Oslo calendar days; a partial response is dated by its start. Contact details are
    never exported. The other formats of the design (sav, dta, odm, fhir,
    fhir-questionnaires, redcap-dictionary, redcap-records, audit-csv, audit-json) come
    later.
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
    )
    problems = unknown_values(filters, catalog.study)
    if problems:
        raise click.ClickException("; ".join(problems))
    try:
        write = _writer(fmt, catalog, filters, delimiter, bom)
        if output == "-":
            count = write(sys.stdout)
            _record(fmt, filters, "-", count, None)
            click.echo(f"{count} rows", err=True)
            return
        count, sha = _write_file(Path(output), write)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise click.ClickException(
            f"cannot read the database ({exc}); run 'flask --app pro_app db upgrade'"
        ) from exc
    _record(fmt, filters, Path(output).name, count, sha)
    click.echo(f"Wrote {count} rows to {output}")
    click.echo(f"SHA-256 {sha}")


def _plain(values: dict) -> dict:
    """The filter as JSON-ready values (dates as ISO text, tuples as lists)."""
    return {
        k: (v.isoformat() if isinstance(v, dt.date) else list(v) if isinstance(v, tuple) else v)
        for k, v in values.items()
    }


def _record(fmt: str, filters, name: str, count: int, sha: str | None) -> None:
    """Every export leaves an audit row: format, filter, rows and the file's SHA-256."""
    db = get_db()
    with write_transaction(db):
        audit.record(
            db,
            actor="cli",
            role="admin",
            action="export",
            entity="export",
            entity_id=name,
            new={
                "format": fmt,
                "filter": _plain(dataclasses.asdict(filters)),
                "rows": count,
                "sha256": sha,
            },
        )
