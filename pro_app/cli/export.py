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
from ..exports import fhir, redcap
from ..exports.audit_files import COLUMNS, write_audit_csv, write_audit_json
from ..exports.codebook import write_codebook_csv, write_codebook_html
from ..exports.csv_writers import wide_layout, write_long, write_wide
from ..exports.model import Filters
from ..exports.odm import write_odm
from ..exports.source import records, unknown_values
from ..exports.stats_files import write_dta, write_sav
from ..exports.variables import catalog_order
from ..storage import audit
from ..storage.db import write as write_transaction

BINARY = ("sav", "dta")
FORMATS = (
    "csv-wide",
    "csv-long",
    "codebook",
    "codebook-html",
    "odm",
    "fhir",
    "fhir-questionnaires",
    "redcap-dictionary",
    "redcap-records",
    "sav",
    "dta",
    "audit-csv",
    "audit-json",
)


def _day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.ClickException(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


def _json_out(out, bundle: dict) -> int:
    """Write a FHIR Bundle as deterministic JSON; return the number of entries."""
    out.write(fhir.dumps(bundle))
    return len(bundle.get("entry", []))


def _audit_rows(db):
    return (
        dict(zip(COLUMNS, row, strict=True))
        for row in db.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY id")
    )


def _audit_writer(fmt: str, db):
    """The audit trail, after walking its chain (the result goes into the JSON and the log)."""
    count, problems = audit.verify(db)
    verification = {"rows": count, "intact": not problems, "problems": [str(p) for p in problems]}
    click.echo(
        f"Audit chain {'intact' if not problems else 'BROKEN'}: {count} rows"
        + "".join(f"\n  {p}" for p in problems),
        err=True,
    )
    if fmt == "audit-csv":
        return lambda out: write_audit_csv(out, _audit_rows(db))
    return lambda out: write_audit_json(out, _audit_rows(db), verification)


def latest_time(db) -> str:
    """The newest stored response time: stamped into files so the same data gives the same
    bytes (never the clock)."""
    row = db.conn.execute(
        "SELECT MAX(COALESCE(submitted_at, started_at)) FROM responses"
    ).fetchone()
    return row[0] or "2000-01-01T00:00:00Z"


def _writer(fmt: str, catalog, filters: Filters, delimiter: str, bom: bool, language: str):
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
    base_url = current_app.config["BASE_URL"]
    if fmt == "fhir-questionnaires":
        return lambda out: _json_out(out, fhir.questionnaires_bundle(catalog, base_url))
    if fmt == "redcap-dictionary":
        return lambda out: redcap.write_dictionary(out, catalog)
    if fmt == "odm":
        created = latest_time(db)
        return lambda out: write_odm(out, catalog, records(db, catalog, filters), created=created)
    if fmt in ("audit-csv", "audit-json"):
        return _audit_writer(fmt, db)
    if fmt in BINARY:
        layout = wide_layout(study, catalog.questionnaires, filters.questionnaires)
        writer = write_sav if fmt == "sav" else write_dta
        return lambda path: writer(path, catalog, records(db, catalog, filters), layout, language)
    if fmt == "fhir":
        return lambda out: _json_out(
            out, fhir.responses_bundle(records(db, catalog, filters), catalog, base_url)
        )
    if fmt == "redcap-records":
        return lambda out: redcap.write_records(out, records(db, catalog, filters), catalog)
    if fmt == "csv-long":
        return lambda out: write_long(
            out, records(db, catalog, filters), delimiter=delimiter, bom=bom
        )
    layout = wide_layout(study, catalog.questionnaires, filters.questionnaires)
    return lambda out: write_wide(
        out, records(db, catalog, filters), layout, delimiter=delimiter, bom=bom
    )


def _write_file(path: Path, write, *, to_path: bool = False) -> tuple[int, str]:
    """Write to a temporary file beside path, then rename: never half a file.

    write takes a text stream, or (to_path) the temporary file's path (SPSS, Stata).
    """
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if to_path:
            os.close(fd)
            count = write(Path(temp))
        else:
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
@click.option(
    "--language",
    type=click.Choice(["nb", "en"]),
    default="nb",
    show_default=True,
    help="Language of variable and value labels (sav, dta).",
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
):
    """Export scored data or the codebook to FILE.

    Formats: csv-wide (one row per participant and timepoint), csv-long (one row per
    answer and score), codebook (CSV, one row per variable), codebook-html, odm (CDISC
    ODM 1.3.2 snapshot: metadata and clinical data), fhir (a Bundle of
    QuestionnaireResponses, R4), fhir-questionnaires (a Bundle of Questionnaires),
    redcap-dictionary (with -events.csv and -mappings.csv beside it), redcap-records (an
    import file, one row per participant and event), sav and dta (SPSS and Stata, the wide
    shape; declined and not applicable as user-missing -7/-8, or .a/.b), audit-csv and
    audit-json (the audit trail, after checking its hash chain). Dates are Oslo
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
    )
    problems = unknown_values(filters, catalog.study)
    if problems:
        raise click.ClickException("; ".join(problems))
    try:
        write = _writer(fmt, catalog, filters, delimiter, bom, language)
        if output == "-":
            count = write(sys.stdout)
            _record(fmt, filters, "-", count, None)
            click.echo(f"{count} rows", err=True)
            return
        binary = fmt in BINARY
        if binary and output == "-":
            raise click.ClickException(f"{fmt} is a binary file: give a file name with -o")
        count, sha = _write_file(Path(output), write, to_path=binary)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise click.ClickException(
            f"cannot read the database ({exc}); run 'flask --app pro_app db upgrade'"
        ) from exc
    _record(fmt, filters, Path(output).name, count, sha)
    click.echo(f"Wrote {count} rows to {output}")
    click.echo(f"SHA-256 {sha}")
    if fmt == "redcap-dictionary":
        _redcap_events(Path(output), catalog)


def _redcap_events(dictionary: Path, catalog) -> None:
    """Beside the data dictionary: the events and the form-event mapping REDCap needs."""
    study = catalog.study
    for suffix, write in (
        ("events", lambda out: redcap.write_events(out, study)),
        ("mappings", lambda out: redcap.write_mappings(out, study, catalog.questionnaires)),
    ):
        path = dictionary.with_name(f"{dictionary.stem}-{suffix}.csv")
        count, sha = _write_file(path, write)
        click.echo(f"Wrote {count} {suffix} to {path} (SHA-256 {sha})")


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
