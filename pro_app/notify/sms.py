"""SMS backends: 'console' for development and 'http' for a gateway (JSON POST)."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

from .mailer import DeliveryError


def send_sms(config, *, to: str, text: str) -> None:
    """Send one SMS through the configured backend, or raise DeliveryError."""
    backend = config.get("SMS_BACKEND") or "console"
    if backend == "console":
        print(f"[SMS to {to}] {text}", file=sys.stderr)  # development only: never in production
        return
    if backend != "http":
        raise DeliveryError(f"unknown SMS backend '{backend}' (use console or http)")
    url = config.get("SMS_URL")
    if not url:
        raise DeliveryError("the SMS gateway is not set up: set PRO_SMS_URL")
    request = urllib.request.Request(
        url,
        data=json.dumps({"to": to, "message": text}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {config.get('SMS_TOKEN') or ''}",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as reply:  # noqa: S310 - configured URL
            if not 200 <= reply.status < 300:
                raise DeliveryError(f"the SMS gateway answered {reply.status}")
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"the SMS gateway answered {exc.code}: {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"the SMS gateway did not answer: {exc}") from exc
