"""Every export format as a download, with the filters of `flask export`; each one audited."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from flask import current_app, g, request

from ..catalog import current_catalog
from ..database import get_db
from ..exports.model import Filters
from ..exports.source import unknown_values
from ..exports.variables import study_order
from ..services.exporting import FORMATS, SUFFIXES, prepare, record, write_file
from .auth import DATA_ROLES, actor, token_route
from .blueprint import bp
from .errors import bad_request, not_found
from .params import Query

MEDIA_TYPES = {
    ".csv": "text/csv",
    ".html": "text/html",
    ".xml": "application/xml",
    ".json": "application/json",
    ".sav": "application/x-spss-sav",
    ".dta": "application/x-stata-dta",
}
FHIR = ("fhir", "fhir-questionnaires")
CHUNK = 1 << 16
PARAMETERS = (
    "site",
    "timepoint",
    "questionnaire",
    "from",
    "to",
    "include_partial",
    "delimiter",
    "bom",
    "language",
    "excel_safe",
)


def media_type(fmt: str) -> str:
    """The Content-Type of a format's file."""
    if fmt in FHIR:
        return "application/fhir+json"
    return MEDIA_TYPES.get(SUFFIXES.get(fmt, ""), "application/octet-stream")


def filters_from(query: Query, study) -> Filters:
    """The export filters from the query (names as in `flask export`)."""
    filters = Filters(
        sites=query.choices("site", [s.id for s in study.sites]),
        timepoints=query.choices("timepoint", [t.id for t in study.timepoints]),
        questionnaires=query.choices("questionnaire", study_order(study)),
        date_from=query.day("from"),
        date_to=query.day("to"),
        include_partial=query.flag("include_partial"),
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise bad_request(f"'from' ({filters.date_from}) is after 'to' ({filters.date_to}).")
    problems = unknown_values(filters, study)
    if problems:
        raise bad_request("; ".join(problems))
    return filters


@bp.get("/exports/<fmt>", provide_automatic_options=False)
@token_route(*DATA_ROLES)
def export(fmt: str):
    """The export file of one format over the filtered data, with its SHA-256."""
    query = Query(request.args, PARAMETERS)
    if fmt not in FORMATS:
        raise not_found(f"Unknown export format '{fmt}' (formats: {', '.join(FORMATS)}).")
    catalog = current_catalog()
    filters = filters_from(query, catalog.study)
    db = get_db()
    prepared = prepare(
        fmt,
        db,
        catalog,
        filters,
        delimiter=query.choice("delimiter", (",", ";")) or ",",
        bom=query.flag("bom"),
        language=query.choice("language", ("nb", "en")) or "nb",
        base_url=current_app.config["BASE_URL"],
        excel_safe=query.flag("excel_safe"),
    )
    name = f"{catalog.study.id}-{fmt}{SUFFIXES[fmt]}"
    path = Path(tempfile.mkdtemp(prefix="pro-api-export-")) / name
    try:
        count, sha = write_file(path, prepared)
        record(
            db,
            fmt=fmt,
            filters=filters,
            name=name,
            count=count,
            sha=sha,
            actor=actor(),
            role=g.api_token["role"],
        )
        size = path.stat().st_size
    except BaseException:
        _remove(path)
        raise
    response = current_app.response_class(
        _stream(path), mimetype=media_type(fmt), direct_passthrough=True
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Content-Length"] = str(size)
    response.headers["X-Content-SHA256"] = sha
    response.headers["X-Export-Rows"] = str(count)
    response.call_on_close(lambda: _remove(path))
    return response


def _remove(path: Path) -> None:
    """Remove an export's temporary file and its folder (gone already is fine)."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def _stream(path: Path):
    """The file's bytes; the file is removed as soon as it is open (the open file stays
    readable), and closed when the body is read or dropped."""
    try:
        with open(path, "rb") as stream:
            _remove(path)
            while chunk := stream.read(CHUNK):
                yield chunk
    finally:
        _remove(path)
