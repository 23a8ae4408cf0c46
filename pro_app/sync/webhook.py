"""Webhook target: a signed JSON POST for in-house databases.

Headers: `X-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`,
`X-Timestamp` (Unix seconds), `X-Message-Id`. The receiver acknowledges with a 2xx and a
JSON body {"received": "<message id>"}; the same message may arrive more than once (after a
lost acknowledgement), so the receiver keeps the message ids it has applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from .transport import Retry, check_status, request, short


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def body_of(message) -> dict:
    """The JSON sent: the message id and kind, and the response with answers and scores."""
    record = message.record
    return {
        "message_id": message.message_id,
        "kind": message.kind,
        "created_at": message.created_at,
        "response": {
            "response_id": record.response_uuid,
            "version": record.response_version,
            "source": record.source,
            "study_code": record.study_code,
            "site": record.site,
            "timepoint": record.timepoint,
            "questionnaire": record.questionnaire,
            "definition_version": record.definition_version,
            "definition_hash": record.definition_hash,
            "submitted_at": record.submitted_at,
            "answers": dict(record.items),
            "scores": {k: s.value for k, s in record.scores.items()},
            "score_reasons": {k: s.reason for k, s in record.scores.items() if s.reason},
        },
    }


class WebhookTarget:
    def __init__(self, config, catalog, base_url: str):
        self.config = config

    def check(self) -> list[str]:
        return []

    def send(self, message, now: float | None = None) -> str:
        body = json.dumps(body_of(message), ensure_ascii=False, sort_keys=True).encode()
        timestamp = str(int(now if now is not None else time.time()))
        reply = request(
            "POST",
            self.config.url,
            body=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-Timestamp": timestamp,
                "X-Message-Id": message.message_id,
                "X-Signature": signature(self.config.credential(), timestamp, body),
            },
            timeout=self.config.timeout_seconds,
        )
        check_status(reply, "webhook")
        try:
            received = json.loads(reply.body).get("received")
        except (ValueError, AttributeError):
            raise Retry(
                f"webhook: the acknowledgement is not JSON: {short(reply.text(), 120)}"
            ) from None
        if received != message.message_id:
            raise Retry(f"webhook: acknowledged {received!r}, not this message")
        return f"HTTP {reply.status} received"
