"""FHIR R4 target: each QuestionnaireResponse by conditional update on its identifier.

PUT <base>/QuestionnaireResponse?identifier=<system>|<uuid> creates the resource the first
time and replaces it afterwards, so a resend (or a later corrected version, which keeps the
identifier) never makes a second resource.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from ..exports.fhir.responses import questionnaire_response
from .transport import Refused, Retry, check_status, request, short

FHIR_JSON = "application/fhir+json"


class FhirTarget:
    def __init__(self, config, catalog, base_url: str):
        self.config = config
        self.catalog = catalog
        self.base_url = base_url
        self.root = config.url.rstrip("/")

    def _headers(self) -> dict:
        headers = {"Accept": FHIR_JSON, "Content-Type": f"{FHIR_JSON}; charset=utf-8"}
        if self.config.credential():
            headers["Authorization"] = f"Bearer {self.config.credential()}"
        return headers

    def check(self) -> list[str]:
        """Ask the server for its CapabilityStatement; return problems (empty: fine)."""
        reply = request(
            "GET",
            f"{self.root}/metadata",
            body=None,
            headers=self._headers(),
            timeout=self.config.timeout_seconds,
        )
        check_status(reply, "FHIR metadata")
        try:
            kind = json.loads(reply.body).get("resourceType")
        except (ValueError, AttributeError):
            kind = None
        if kind != "CapabilityStatement":
            raise Retry(f"FHIR metadata: not a CapabilityStatement: {short(reply.text(), 120)}")
        return []

    def resource(self, message) -> dict:
        record = message.record
        body = questionnaire_response(
            record, self.catalog.questionnaires[record.questionnaire], self.base_url
        )
        # The server owns id and meta; the identifier decides which resource this is.
        body.pop("id", None)
        body.pop("meta", None)
        return body

    def _search_url(self, identifier: dict) -> str:
        token = f"{identifier['system']}|{identifier['value']}"
        return f"{self.root}/QuestionnaireResponse?identifier={quote(token, safe='')}"

    def send(self, message) -> str:
        body = self.resource(message)
        reply = request(
            "PUT",
            self._search_url(body["identifier"]),
            body=json.dumps(body, ensure_ascii=False, sort_keys=True).encode(),
            headers=self._headers(),
            timeout=self.config.timeout_seconds,
        )
        if reply.status == 412:
            raise Refused(
                "FHIR: more than one QuestionnaireResponse has this identifier on the server;"
                " remove the duplicates there, then retry"
            )
        if 400 <= reply.status < 500 and reply.status not in (408, 429):
            raise Refused(f"FHIR: HTTP {reply.status}: {_outcome(reply)}")
        check_status(reply, "FHIR")
        location = reply.headers.get("Location") or reply.headers.get("Content-Location") or ""
        try:
            answer = json.loads(reply.body) if reply.body else {}
        except ValueError:
            raise Retry(f"FHIR: HTTP {reply.status} with a body that is not JSON") from None
        if answer and answer.get("resourceType") not in (
            "QuestionnaireResponse",
            "OperationOutcome",
        ):
            raise Retry(f"FHIR: unexpected reply {short(reply.text(), 120)}")
        version = (answer.get("meta") or {}).get("versionId", "")
        return f"HTTP {reply.status} {location or answer.get('id', '')} version {version}".strip()

    def read_back(self, message) -> dict | None:
        """The server's resource for this response's identifier, or None."""
        identifier = self.resource(message)["identifier"]
        reply = request(
            "GET",
            self._search_url(identifier),
            body=None,
            headers=self._headers(),
            timeout=self.config.timeout_seconds,
        )
        check_status(reply, "FHIR search")
        try:
            found = json.loads(reply.body).get("entry") or []
        except (ValueError, AttributeError):
            raise Retry("FHIR search: the reply is not a Bundle") from None
        return found[0].get("resource") if found else None

    def differences(self, message, held: dict) -> list[str]:
        """What differs between our resource and the server's (answers and status)."""
        ours = self.resource(message)
        problems = []
        for key in ("status", "questionnaire", "authored", "item"):
            if _normal(ours.get(key)) != _normal(held.get(key)):
                problems.append(key)
        return problems


def _normal(value):
    return json.loads(json.dumps(value, sort_keys=True)) if value is not None else None


def _outcome(reply) -> str:
    """The diagnostics of an OperationOutcome, or the start of the body."""
    try:
        issues = json.loads(reply.body).get("issue") or []
        texts = [i.get("diagnostics") or (i.get("details") or {}).get("text", "") for i in issues]
        joined = "; ".join(t for t in texts if t)
        if joined:
            return short(joined)
    except (ValueError, AttributeError):
        pass
    return short(reply.text())
