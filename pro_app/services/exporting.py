"""Run an export: choose the writer, write through a temporary file, record it in the audit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..exports import fhir, redcap
from ..exports.audit_files import COLUMNS, write_audit_csv, write_audit_json
from ..exports.codebook import write_codebook_csv, write_codebook_html
from ..exports.csv_writers import wide_layout, write_long, write_wide
from ..exports.model import Filters
from ..exports.odm import write_odm
from ..exports.signatures import write_signatures
from ..exports.source import count_records, records
from ..exports.stats_files import write_dta, write_sav
from ..exports.variables import catalog_order
from ..storage import audit
from ..storage.db import write as write_transaction
from . import signoff

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
    "signatures",
)
HISTORY_FORMATS = ("csv-long",)  # the formats that can hold several versions of a response
SUFFIXES = {
    "csv-wide": ".csv",
    "csv-long": ".csv",
    "codebook": ".csv",
    "codebook-html": ".html",
    "odm": ".xml",
    "fhir": ".json",
    "fhir-questionnaires": ".json",
    "redcap-dictionary": ".csv",
    "redcap-records": ".csv",
    "sav": ".sav",
    "dta": ".dta",
    "audit-csv": ".csv",
    "audit-json": ".json",
    "signatures": ".csv",
}


@dataclass(frozen=True)
class Prepared:
    """A writer: write(stream) for text formats, write(path) for binary ones."""

    write: object
    binary: bool
    note: str = ""


def latest_time(db) -> str:
    """The newest stored response time: stamped into files instead of the clock, so the
    same data gives the same bytes."""
    row = db.conn.execute(
        "SELECT MAX(COALESCE(submitted_at, started_at)) FROM responses"
    ).fetchone()
    return row[0] or "2000-01-01T00:00:00Z"


def counted(found, progress):
    """Pass records through, telling progress how many have gone by."""
    for number, item in enumerate(found, 1):
        progress(number)
        yield item


def total_records(db, catalog, filters: Filters) -> int:
    """How many records an export over filters will read (for a progress bar)."""
    return count_records(db, catalog, filters)


def _json_out(out, bundle: dict) -> int:
    out.write(fhir.dumps(bundle))
    return len(bundle.get("entry", []))


def _signature_rows(db):
    """Every signature, oldest first, with whether its hash matches its stored content and
    whether it still covers the timepoint's current responses."""
    found = db.conn.execute(
        "SELECT s.*, p.study_code, p.site FROM signatures s"
        " JOIN participants p ON p.id = s.participant_id ORDER BY s.id"
    )
    names = [d[0] for d in found.description]
    covering: dict[int, dict] = {}
    for values in found.fetchall():
        row = dict(zip(names, values, strict=True))
        if row["assessment_id"] not in covering:
            person = db.conn.execute(
                "SELECT * FROM participants WHERE id = ?", [row["participant_id"]]
            )
            assessment = db.conn.execute(
                "SELECT * FROM assessments WHERE id = ?", [row["assessment_id"]]
            )
            covering[row["assessment_id"]] = {
                s["id"]: s["covers"]
                for s in signoff.state(db, _row_of(person), _row_of(assessment))
            }
        signed = json.loads(row["content"]).get("responses", [])
        yield {
            **row,
            "second_factor": bool(row["second_factor"]),
            "hash_matches_content": signoff.verify(row),
            "covers_current": covering[row["assessment_id"]].get(row["id"], False),
            "versions_signed": " ".join(f"{r['questionnaire']}:v{r['version']}" for r in signed),
        }


def _row_of(cursor) -> dict:
    values = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], values, strict=True))


def _audit_rows(db):
    return (
        dict(zip(COLUMNS, row, strict=True))
        for row in db.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY id")
    )


def prepare(
    fmt: str,
    db,
    catalog,
    filters: Filters,
    *,
    delimiter: str = ",",
    bom: bool = False,
    language: str = "nb",
    base_url: str = "",
    excel_safe: bool = False,
    progress=None,
) -> Prepared:
    """Return the writer of one format over the filtered data (nothing is read yet).

    progress, if given, is called with the number of records read so far (every record).
    excel_safe makes CSV cells that a spreadsheet would run as a formula start with a quote.
    """
    study = catalog.study

    def data():  # read when writing, not now
        found = records(db, catalog, filters)
        return found if progress is None else counted(found, progress)

    chosen = [
        catalog.questionnaires[q]
        for q in catalog_order(catalog)
        if not filters.questionnaires or q in filters.questionnaires
    ]
    layout = lambda: wide_layout(study, catalog.questionnaires, filters.questionnaires)  # noqa: E731
    if fmt in BINARY:
        writer = write_sav if fmt == "sav" else write_dta
        return Prepared(lambda path: writer(path, catalog, data(), layout(), language), True)
    if fmt in ("audit-csv", "audit-json"):
        count, problems = audit.verify(db)
        verdict = {"rows": count, "intact": not problems, "problems": [str(p) for p in problems]}
        note = f"Audit chain {'intact' if not problems else 'BROKEN'}: {count} rows" + "".join(
            f"\n  {p}" for p in problems
        )
        if fmt == "audit-csv":
            return Prepared(lambda out: write_audit_csv(out, _audit_rows(db)), False, note)
        return Prepared(lambda out: write_audit_json(out, _audit_rows(db), verdict), False, note)
    if fmt == "signatures":
        return Prepared(
            lambda out: write_signatures(out, _signature_rows(db), delimiter=delimiter, bom=bom),
            False,
        )
    if filters.all_versions and fmt not in HISTORY_FORMATS:
        raise ValueError(
            f"--all-versions works with {', '.join(HISTORY_FORMATS)} only: the other formats "
            "hold one response per questionnaire and timepoint"
        )
    writers = {
        "codebook": lambda out: write_codebook_csv(
            out, chosen, delimiter=delimiter, bom=bom, study=study
        ),
        "codebook-html": lambda out: write_codebook_html(
            out, chosen, f"Kodebok – {study.title.nb}", study=study
        ),
        "fhir-questionnaires": lambda out: _json_out(
            out, fhir.questionnaires_bundle(catalog, base_url)
        ),
        "redcap-dictionary": lambda out: redcap.write_dictionary(out, catalog),
        "odm": lambda out: write_odm(out, catalog, data(), created=latest_time(db)),
        "fhir": lambda out: fhir.write_responses_bundle(out, data(), catalog, base_url),
        "redcap-records": lambda out: redcap.write_records(out, data(), catalog),
        "csv-long": lambda out: write_long(
            out, data(), delimiter=delimiter, bom=bom, excel_safe=excel_safe
        ),
        "csv-wide": lambda out: write_wide(
            out, data(), layout(), delimiter=delimiter, bom=bom, excel_safe=excel_safe
        ),
    }
    return Prepared(writers[fmt], False)


def write_file(path: Path, prepared: Prepared) -> tuple[int, str]:
    """Write through a temporary file beside path and rename: never half a file.

    Returns (rows, SHA-256 of the file).
    """
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if prepared.binary:
            os.close(fd)
            count = prepared.write(Path(temp))
        else:
            with open(fd, "w", encoding="utf-8", newline="") as out:
                count = prepared.write(out)
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


def redcap_companions(dictionary: Path, catalog) -> list[tuple[Path, int, str]]:
    """Beside a REDCap data dictionary: the events and the form-event mapping."""
    study = catalog.study
    written = []
    for suffix, write in (
        ("events", lambda out: redcap.write_events(out, study)),
        ("mappings", lambda out: redcap.write_mappings(out, study, catalog.questionnaires)),
    ):
        path = dictionary.with_name(f"{dictionary.stem}-{suffix}.csv")
        count, sha = write_file(path, Prepared(write, False))
        written.append((path, count, sha))
    return written


def _plain(values: dict) -> dict:
    return {
        k: (v.isoformat() if isinstance(v, dt.date) else list(v) if isinstance(v, tuple) else v)
        for k, v in values.items()
    }


def record(
    db, *, fmt: str, filters: Filters, name: str, count: int, sha: str | None, actor: str, role: str
) -> None:
    """Every export leaves an audit row: who, format, filter, rows and the file's SHA-256."""
    with write_transaction(db):
        audit.record(
            db,
            actor=actor,
            role=role,
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
