"""The reusable parts of the OpenAPI document: schemas, parameters, error answers."""

from __future__ import annotations

from ..domain.schedule import STATES
from ..exports.variables import study_order
from .errors import CODES
from .params import DEFAULT_LIMIT, MAX_CURSOR, MAX_LIMIT
from .people import STATUSES

DATE = {"type": "string", "format": "date"}
TIME = {"type": "string", "format": "date-time"}


def nullable(schema: dict) -> dict:
    found = dict(schema)
    found["type"] = [schema["type"], "null"]
    if "enum" in found:
        found["enum"] = [*found["enum"], None]
    return found


def obj(properties: dict, description: str = "") -> dict:
    found = {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }
    return {"description": description, **found} if description else found


def whole(pattern: str) -> str:
    """A regular expression that must match the whole value (the server uses fullmatch; a
    JSON Schema pattern matches anywhere)."""
    if pattern.startswith("^") and pattern.endswith("$"):
        return pattern
    return f"^(?:{pattern})$"


def ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def query(name: str, schema: dict, description: str) -> dict:
    found = {"name": name, "in": "query", "required": False, "schema": schema}
    if schema.get("type") == "array":
        found.update(style="form", explode=True)
    return {**found, "description": description}


def several(values, description: str) -> dict:
    return {
        "type": "array",
        "items": {"type": "string", "enum": list(values)},
        "description": description,
    }


def schemas(study) -> dict:
    sites = {"type": "string", "enum": [s.id for s in study.sites]}
    timepoint = {"type": "string", "enum": [t.id for t in study.timepoints]}
    participant = {
        "study_code": {"type": "string", "description": "Pseudonymous study code."},
        "site": sites,
        "language": {"type": "string", "enum": ["nb", "en"]},
        "enrolled_on": DATE,
        "day0": nullable(DATE),
        "status": {"type": "string", "enum": list(STATUSES)},
    }
    assessment = {
        "study_code": {"type": "string"},
        "site": sites,
        "timepoint": timepoint,
        "target_day": DATE,
        "first_day": {**DATE, "description": "First day of the window (Oslo)."},
        "last_day": {**DATE, "description": "Last day of the window (Oslo)."},
        "state": {"type": "string", "enum": list(STATES)},
        "completed_at": nullable(TIME),
        "receipt_code": {"type": ["string", "null"]},
    }
    response = {
        "uuid": {"type": "string", "format": "uuid"},
        "version": {"type": "integer", "minimum": 1},
        "study_code": {"type": "string"},
        "site": sites,
        "timepoint": timepoint,
        "questionnaire": {"type": "string", "enum": list(study_order(study))},
        "definition_version": {"type": "string"},
        "definition_hash": {"type": "string"},
        "status": {"type": "string", "enum": ["submitted"]},
        "source": {
            "type": "string",
            "enum": ["phone", "paper"],
            "description": "Where the answers came from: the participant's phone, or a paper "
            "form entered by staff (then submitted_on is the day it was filled in).",
        },
        "started_at": TIME,
        "submitted_at": TIME,
        "submitted_on": {**DATE, "description": "The Oslo calendar day of submitted_at."},
        "answers": {
            "type": "object",
            "description": "Every item of the questionnaire, in definition order, by item id.",
            "additionalProperties": ref("schemas", "Answer"),
        },
        "scores": {
            "type": "object",
            "description": "Every score of the questionnaire, by score id.",
            "additionalProperties": ref("schemas", "Score"),
        },
    }
    cursor = {
        "type": ["string", "null"],
        "description": "Pass as 'cursor' for the next page; null on the last page.",
    }

    def page(item: str) -> dict:
        items = {"type": "array", "items": ref("schemas", item)}
        return obj({"data": items, "next_cursor": cursor})

    return {
        "Error": obj(
            {
                "error": obj(
                    {
                        "code": {"type": "string", "enum": sorted(set(CODES.values()))},
                        "message": {"type": "string", "description": "What to fix."},
                        "request_id": {"type": "string"},
                    }
                )
            }
        ),
        "Participant": obj(participant),
        "ParticipantDetail": obj(
            {
                **participant,
                "assessments": {"type": "array", "items": ref("schemas", "Assessment")},
            }
        ),
        "Assessment": obj(assessment, "One participant × timepoint and its state now."),
        "Answer": {
            "type": ["integer", "number", "string", "array", "null"],
            "items": {"type": ["integer", "number", "string"]},
            "description": "A code (a list of codes for multiple choice), a text or date, the"
            " word 'declined' or 'not_applicable', or null (missing, or hidden by a"
            " display condition).",
        },
        "Score": obj(
            {
                "value": {
                    "type": ["number", "boolean", "string", "null"],
                    "description": "Unrounded; null when it cannot be computed.",
                },
                "reason": {"type": ["string", "null"], "description": "Why value is null."},
            }
        ),
        "Response": obj(response, "A submitted response (latest version)."),
        "ParticipantPage": page("Participant"),
        "AssessmentPage": page("Assessment"),
        "ResponsePage": page("Response"),
        "ParticipantOne": obj({"data": ref("schemas", "ParticipantDetail")}),
        "ResponseOne": obj({"data": ref("schemas", "Response")}),
    }


def errors() -> dict:
    def error(description: str, headers: dict | None = None) -> dict:
        found = {
            "description": description,
            "content": {"application/json": {"schema": ref("schemas", "Error")}},
        }
        return {**found, "headers": headers} if headers else found

    challenge = {
        "WWW-Authenticate": {
            "required": True,
            "schema": {"type": "string"},
            "description": 'Bearer realm="api" (with error="invalid_token" for a bad one).',
        }
    }
    return {
        "BadRequest": error("A parameter is unknown, repeated or has a bad value."),
        "Unauthorized": error("No token, or an unknown, revoked or expired one.", challenge),
        "Forbidden": error("The token's role or sites do not allow this."),
        "NotFound": error("No such participant, response or export format."),
    }


def parameters(study) -> dict:
    sites = [s.id for s in study.sites]
    timepoints = [t.id for t in study.timepoints]
    return {
        "limit": query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "Items per page.",
        ),
        "cursor": query(
            "cursor",
            {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": MAX_CURSOR},
            "next_cursor from the previous page of the same list (opaque).",
        ),
        "site": query("site", several(sites, "Site ids."), "Only these sites (repeatable)."),
        "timepoint": query(
            "timepoint", several(timepoints, "Timepoint ids."), "Only these timepoints."
        ),
        "questionnaire": query(
            "questionnaire",
            several(study_order(study), "Questionnaire ids."),
            "Only these questionnaires.",
        ),
        "participant": query(
            "participant",
            {"type": "string", "pattern": whole(study.code_pattern)},
            "Only this participant (study code).",
        ),
    }
