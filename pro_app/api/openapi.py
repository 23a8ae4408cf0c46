"""The OpenAPI 3.1 document of /api/v1, written by hand from the study (its enums come from it).

It has to describe the answers exactly: the test suite runs schemathesis against it.
"""

from __future__ import annotations

from flask import current_app, request

from ..catalog import current_catalog
from ..domain.schedule import STATES
from ..services.exporting import FORMATS
from .auth import DATA_ROLES, EVERY_ROLE, token_route
from .blueprint import ROOT, bp
from .components import DATE, TIME, errors, parameters, query, ref, schemas, several, whole
from .errors import json_response
from .exports import media_type
from .params import Query
from .people import STATUSES


def _operation(summary: str, name: str, roles, params: list, ok: dict) -> dict:
    refs = {
        "400": ref("responses", "BadRequest"),
        "401": ref("responses", "Unauthorized"),
        "403": ref("responses", "Forbidden"),
        "404": ref("responses", "NotFound"),
    }
    return {
        "get": {
            "operationId": name,
            "summary": summary,
            "description": f"Token roles: {', '.join(roles)}.",
            "parameters": params,
            "responses": {"200": ok, **refs},
        }
    }


def _json(schema: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": ref("schemas", schema)}},
    }


def _export_parameters() -> list:
    flag = {"type": "boolean", "default": False}
    return [
        {
            "name": "format",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": list(FORMATS)},
        },
        ref("parameters", "site"),
        ref("parameters", "timepoint"),
        ref("parameters", "questionnaire"),
        query("from", DATE, "Submitted on or after this Oslo day (a partial: started)."),
        query("to", DATE, "Submitted on or before this Oslo day; not before 'from'."),
        query("include_partial", flag, "Also responses in progress (status partial)."),
        query(
            "delimiter", {"type": "string", "enum": [",", ";"], "default": ","}, "CSV delimiter."
        ),
        query("bom", flag, "Start CSV files with a UTF-8 byte order mark."),
        query(
            "language",
            {"type": "string", "enum": ["nb", "en"], "default": "nb"},
            "Language of labels (sav, dta).",
        ),
        query("excel_safe", flag, "CSV: quote cells that a spreadsheet would run."),
    ]


def _export_file() -> dict:
    types = {}
    for fmt in FORMATS:
        media = media_type(fmt).split(";")[0]
        if media.endswith("json"):
            types[media] = {"schema": {"type": "object"}}
        else:
            types[media] = {"schema": {"type": "string", "format": "binary"}}
    string = {"type": "string"}
    return {
        "description": "The file, as an attachment.",
        "headers": {
            "Content-Disposition": {"required": True, "schema": string},
            "X-Content-SHA256": {
                "required": True,
                "description": "SHA-256 of the file, hex (as in the audit log).",
                "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
            "X-Export-Rows": {
                "required": True,
                "description": "Rows or records written.",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            },
        },
        "content": types,
    }


def _paths(study) -> dict:
    p = lambda name: ref("parameters", name)  # noqa: E731
    every, data = EVERY_ROLE, DATA_ROLES
    code = {"type": "string", "pattern": whole(study.code_pattern)}
    return {
        "/participants": _operation(
            "Participants (no contact details), by study code",
            "participants",
            every,
            [
                p("site"),
                query("status", several(STATUSES, "Statuses."), "Only these statuses."),
                p("limit"),
                p("cursor"),
            ],
            _json("ParticipantPage", "A page of participants."),
        ),
        "/participants/{study_code}": _operation(
            "One participant with the assessments of their schedule",
            "participant",
            every,
            [{"name": "study_code", "in": "path", "required": True, "schema": code}],
            _json("ParticipantOne", "The participant."),
        ),
        "/assessments": _operation(
            "Assessments (participant × timepoint): window, state, completion",
            "assessments",
            every,
            [
                p("participant"),
                p("site"),
                p("timepoint"),
                query("state", several(STATES, "States."), "Only these states (now)."),
                p("limit"),
                p("cursor"),
            ],
            _json("AssessmentPage", "A page of assessments."),
        ),
        "/responses": _operation(
            "Submitted responses (latest version) with answers and scores",
            "responses",
            data,
            [
                p("site"),
                p("timepoint"),
                p("questionnaire"),
                p("participant"),
                query("submitted_since", TIME, "Only responses submitted at or after this time."),
                p("limit"),
                p("cursor"),
            ],
            _json("ResponsePage", "A page of responses."),
        ),
        "/responses/{uuid}": _operation(
            "One submitted response by its UUID",
            "response",
            data,
            [
                {
                    "name": "uuid",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            ],
            _json("ResponseOne", "The response."),
        ),
        "/exports/{format}": _operation(
            "An export file (every format of 'flask export'); audited",
            "export",
            data,
            _export_parameters(),
            _export_file(),
        ),
        "/openapi.json": _operation(
            "This document",
            "openapi",
            every,
            [],
            {
                "description": "The OpenAPI document.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        ),
    }


def document(catalog, base_url: str = "") -> dict:
    """The whole document for the app's study."""
    study = catalog.study
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"ePRO API – {study.title.en}",
            "version": "1.0.0",
            "description": (
                "Token-authenticated JSON for data managers and study systems. Send"
                " 'Authorization: Bearer <token>' (an admin makes tokens with 'flask"
                " api-token create'). Lists are pages: 'limit' (1 to 500) and 'cursor' (the"
                ' previous page\'s next_cursor). Errors are JSON: {"error": {"code",'
                ' "message", "request_id"}}. Contact details are never served.'
            ),
        },
        "servers": [{"url": f"{base_url.rstrip('/')}{ROOT}"}],
        "security": [{"bearer": []}],
        "paths": _paths(study),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (pro_...), in the Authorization header only.",
                }
            },
            "schemas": schemas(study),
            "parameters": parameters(study),
            "responses": errors(),
        },
    }


@bp.get("/openapi.json", provide_automatic_options=False)
@token_route(*EVERY_ROLE)
def openapi():
    """The OpenAPI document (built once per app)."""
    Query(request.args, ())
    cached = current_app.extensions.get("pro_openapi")
    if cached is None:
        cached = document(current_catalog())
        current_app.extensions["pro_openapi"] = cached
    return json_response(cached)
