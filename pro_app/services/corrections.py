"""Data change requests: a site asks to correct one submitted answer; approval makes a version.

A request names one item of the newest submitted version of a response, the value asked
for, the reason and the source. Its decision is one row (approved, rejected, withdrawn).
Approval writes, in one transaction, a new `responses` row with the same UUID and the next
version, the answers copied into the journal with the item changed, scores computed anew,
any alert the change raises, audit rows and one `response.corrected` outbox message. The
earlier version stays as it was. See docs/decisions/0026-corrections-and-sign-off.md.
"""

from __future__ import annotations

import re

from ..domain.answers import DECLINED, NOT_APPLICABLE, check_value
from ..domain.model import Date, Integer, MultipleChoice, Text
from ..domain.paths import visible_items
from ..storage import audit
from ..storage.db import one, rows, stamp, write
from .journal import current_answers, decode, encode
from .scored import stored_scores
from .versions import diff, new_version, newest, versions

REQUESTERS = ("investigator",)
APPROVERS = ("investigator", "coordinator")
MODES = ("second_person", "password")
MAX_TEXT = 1000

REQUEST_SQL = """
SELECT c.*, r.questionnaire, r.id AS response_id, p.study_code, p.site, a.timepoint,
       COALESCE(e.status, 'requested') AS status, e.decided_by, e.decided_role, e.decided_at,
       e.note, e.password_confirmed, e.new_response_id,
       (SELECT version FROM responses WHERE id = e.new_response_id) AS new_version
FROM change_requests c
JOIN responses r ON r.uuid = c.response_uuid AND r.version = c.version
JOIN assessments a ON a.id = r.assessment_id
JOIN participants p ON p.id = a.participant_id
LEFT JOIN change_request_events e ON e.request_id = c.id
"""


class CorrectionError(ValueError):
    """A request or decision that cannot be made; problems are (key, values) to be said.

    The keys are stable names (pages say them in the reader's language); the message is
    English for logs and commands.
    """

    def __init__(self, *problems: tuple[str, dict]):
        self.problems = problems
        super().__init__("; ".join(f"{key} {values}" for key, values in problems))


def _problem(key: str, **values) -> CorrectionError:
    return CorrectionError((key, values))


# Reading ------------------------------------------------------------------------------


def get(db, request_id: int) -> dict | None:
    """One request with its status and decision."""
    found = one(db, REQUEST_SQL + " WHERE c.id = ?", [request_id])
    return _decoded(found) if found else None


def listing(db, *, sites, participant_id=None, status=None, limit=500) -> list[dict]:
    """Requests at these sites (or of one participant), open ones first, newest first."""
    if not sites:
        return []
    where = [f"p.site IN ({', '.join('?' for _ in sites)})"]
    params: list = list(sites)
    if participant_id is not None:
        where.append("p.id = ?")
        params.append(participant_id)
    if status is not None:
        where.append("COALESCE(e.status, 'requested') = ?")
        params.append(status)
    sql = (
        REQUEST_SQL
        + " WHERE "
        + " AND ".join(where)
        + " ORDER BY e.id IS NOT NULL, c.id DESC LIMIT ?"
    )
    return [_decoded(r) for r in rows(db, sql, [*params, limit])]


def _decoded(row: dict) -> dict:
    return {**row, "old": decode(row["old_value"]), "new": decode(row["new_value"])}


scores_of = stored_scores  # {score: (value, reason)} of one response version


def change_of(db, response_id: int) -> dict | None:
    """The approved request that made this version (None for a version 1)."""
    found = one(db, REQUEST_SQL + " WHERE e.new_response_id = ?", [response_id])
    return _decoded(found) if found else None


def history(db, definition, response_uuid: str) -> list[dict]:
    """Each version with its answers, scores, and what changed from the one before (and why)."""
    result, before = [], None
    for row in versions(db, response_uuid):
        answers = current_answers(db, row["id"])
        scores = scores_of(db, row["id"])
        entry = {"row": row, "answers": answers, "scores": scores, "change": None, "diff": []}
        if before is not None:
            entry["change"] = change_of(db, row["id"])
            entry["diff"] = diff(definition, before, entry)
        result.append(entry)
        before = entry
    return result


# Values from a form -------------------------------------------------------------------


def allowed_values(item) -> dict:
    """What an item accepts, for the error message and the form."""
    return {
        "codes": item.codes() if not isinstance(item, Integer) else None,
        "range": (item.min, item.max) if isinstance(item, Integer) else None,
        "declined": item.skippable,
        "not_applicable": item.not_applicable is not None,
        "text": item.max_length if isinstance(item, Text) else None,
        "date": isinstance(item, Date),
    }


def parse_value(item, raw):
    """Turn form input (text, or a list of texts for several choices) into an answer value."""
    if isinstance(item, MultipleChoice) and isinstance(raw, list | tuple):
        texts = [str(v).strip() for v in raw if str(v).strip()]
        if len(texts) == 1 and texts[0] in (DECLINED, NOT_APPLICABLE):
            return texts[0]
        return [_number(t) for t in texts] or None
    if isinstance(raw, list | tuple):
        raw = raw[0] if len(raw) == 1 else ",".join(str(v) for v in raw)
    text = str(raw or "").strip()
    if not text:
        return None
    if text in (DECLINED, NOT_APPLICABLE) or isinstance(item, Text | Date):
        return text
    if isinstance(item, MultipleChoice):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return [_number(p) for p in parts]
    return _number(text)


def _number(text: str):
    """A whole number written in ASCII digits, else the text itself (checking says why)."""
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else text


def checked_value(item, raw):
    """Return the new value normalised, or raise CorrectionError saying what is allowed."""
    value = parse_value(item, raw)
    if value is None:
        raise _problem("value_missing", item=item.id)
    normal, error = check_value(item, value, strict=True)
    if error or normal is None:
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        raise _problem("value", item=item.id, value=shown, allowed=allowed_values(item))
    return normal


# Who may do what ----------------------------------------------------------------------


def may_request(staff: dict) -> bool:
    return staff["role"] in REQUESTERS


def may_approve(staff: dict, request: dict, mode: str) -> bool:
    """An investigator or coordinator of the site; under second_person, not the requester."""
    if staff["role"] not in APPROVERS or request["status"] != "requested":
        return False
    same = staff["email"].lower() == request["requested_by"].lower()
    return not same if mode == "second_person" else True


def may_decline(staff: dict, request: dict) -> bool:
    """The requester may withdraw; another investigator or coordinator may reject."""
    return staff["role"] in APPROVERS and request["status"] == "requested"


# Writing ------------------------------------------------------------------------------


def _site_check(row: dict | None, sites) -> dict:
    if row is None or row["site"] not in sites:
        raise LookupError("no such response or request at your sites")
    return row


def _clean_text(key: str, text: str | None, problems: list) -> str:
    text = (text or "").strip()
    if not text:
        problems.append((key, {}))
    elif len(text) > MAX_TEXT:
        problems.append((f"{key}_long", {"max": MAX_TEXT}))
    return text


def _definition_matches(definition, row: dict) -> None:
    if definition is None or definition.content_hash != row["definition_hash"]:
        raise _problem(
            "definition",
            stored=row["definition_hash"][:12],
            current=(definition.content_hash[:12] if definition else "none"),
        )


def request_change(
    db, definition, *, response_uuid, item_id, raw_value, reason, source, staff, sites
) -> int:
    """Record a request to change one answer of the newest version; return its id."""
    if not may_request(staff):
        raise PermissionError("only an investigator of the site can request a correction")
    with write(db):
        base = _site_check(newest(db, response_uuid), sites)
        _definition_matches(definition, base)
        answers = current_answers(db, base["id"])
        if item_id not in visible_items(definition, answers):
            raise _problem("item", item=item_id)
        item = definition.item(item_id)
        problems: list = []
        reason = _clean_text("reason", reason, problems)
        source = _clean_text("source", source, problems)
        try:
            value = checked_value(item, raw_value)
            if value == answers.get(item_id):
                problems.append(("same", {"item": item_id}))
        except CorrectionError as exc:
            problems.extend(exc.problems)
        if problems:
            raise CorrectionError(*problems)
        now = stamp()
        cursor = db.execute(
            "INSERT INTO change_requests (response_uuid, version, item, old_value, new_value,"
            " reason, source, requested_by, requested_role, requested_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                response_uuid,
                base["version"],
                item_id,
                encode(answers.get(item_id)),
                encode(value),
                reason,
                source,
                staff["email"],
                staff["role"],
                now,
            ),
        )
        request_id = cursor.lastrowid
        audit.record(
            db,
            actor=staff["email"],
            role=staff["role"],
            action="change_request.create",
            entity="change_request",
            entity_id=_entity(base, request_id),
            field=item_id,
            old=answers.get(item_id),
            new=value,
            reason=f"{reason} (source: {source})",
            at=now,
        )
    return request_id


def _entity(row: dict, request_id: int) -> str:
    # Under the study code, so the participant's page lists it with the rest of their history.
    return f"{row['study_code']}/{row['timepoint']}/{row['questionnaire']}/request-{request_id}"


def _open_request(db, request_id: int, sites) -> dict:
    found = _site_check(get(db, request_id), sites)
    if found["status"] != "requested":
        raise _problem("decided", status=found["status"])
    return found


def decline(db, request_id: int, *, note, staff, sites) -> str:
    """Reject a request (another person) or withdraw it (the requester); return the status."""
    problems: list = []
    note = _clean_text("note", note, problems)
    with write(db):
        found = _open_request(db, request_id, sites)
        if not may_decline(staff, found):
            raise PermissionError("only an investigator or coordinator of the site can decide")
        if problems:
            raise CorrectionError(*problems)
        own = staff["email"].lower() == found["requested_by"].lower()
        status = "withdrawn" if own else "rejected"
        now = stamp()
        db.execute(
            "INSERT INTO change_request_events (request_id, status, decided_by, decided_role,"
            " decided_at, note, password_confirmed) VALUES (?, ?, ?, ?, ?, ?, 0)",
            (request_id, status, staff["email"], staff["role"], now, note),
        )
        audit.record(
            db,
            actor=staff["email"],
            role=staff["role"],
            action=f"change_request.{'withdraw' if own else 'reject'}",
            entity="change_request",
            entity_id=_entity(found, request_id),
            field="status",
            old="requested",
            new=status,
            reason=note,
            at=now,
        )
    return status


def approve(db, catalog, request_id: int, *, staff, sites, mode, password_confirmed) -> dict:
    """Approve a request: the next version of the response, scored, audited and queued."""
    if mode not in MODES:
        raise ValueError(f"unknown approval setting {mode!r} (settings: {', '.join(MODES)})")
    with write(db):
        found = _open_request(db, request_id, sites)
        if staff["role"] not in APPROVERS:
            raise PermissionError("only an investigator or coordinator of the site can approve")
        if not may_approve(staff, found, mode):
            raise _problem("same_person")
        if mode == "password" and not password_confirmed:
            raise _problem("password")
        base = newest(db, found["response_uuid"])
        if base["version"] != found["version"]:
            raise _problem("stale", version=base["version"])
        definition = catalog.questionnaires.get(base["questionnaire"])
        _definition_matches(definition, base)
        answers = current_answers(db, base["id"])
        if answers.get(found["item"]) != found["old"]:
            raise _problem("stale", version=base["version"])
        now = stamp()
        made = new_version(db, definition, base, answers, found, staff=staff, now=now)
        db.execute(
            "INSERT INTO change_request_events (request_id, status, decided_by, decided_role,"
            " decided_at, note, password_confirmed, new_response_id)"
            " VALUES (?, 'approved', ?, ?, ?, NULL, ?, ?)",
            (request_id, staff["email"], staff["role"], now, int(password_confirmed), made["id"]),
        )
        audit.record(
            db,
            actor=staff["email"],
            role=staff["role"],
            action="change_request.approve",
            entity="change_request",
            entity_id=_entity(found, request_id),
            field="status",
            old="requested",
            new={"status": "approved", "version": made["version"], "mode": mode},
            at=now,
        )
        return made
