"""Send a participant a fresh link by e-mail and/or SMS, and record every attempt."""

from __future__ import annotations

import datetime as dt
import logging

from ..services import invites
from ..storage import audit
from ..storage.contacts import load
from ..storage.db import stamp, write
from .mailer import DeliveryError, send_email
from .sms import send_sms
from .texts import render

log = logging.getLogger(__name__)
NO_CONTACT = "no contact details for this channel"


def deliver(
    db,
    config,
    study,
    cipher,
    *,
    participant: dict,
    assessment: dict,
    channels,
    kind: str = "invite",
    step: int = 0,
    actor: str,
    role: str,
) -> dict[str, str | None]:
    """Issue a new link (older ones die), send it on each channel; return {channel: error}."""
    contact = load(db, participant["id"], cipher)
    wanted = [c for c in channels if contact.get("email" if c == "email" else "phone")]
    result: dict[str, str | None] = {
        c: "no contact details for this channel" for c in channels if c not in wanted
    }
    if not wanted:
        return result
    token = invites.issue(db, assessment, participant, actor=actor, role=role)
    message = render(
        study,
        kind,
        language=participant["language"],
        link=invites.link(config["BASE_URL"], token),
        last_day=dt.date.fromisoformat(assessment["last_day"]),
        site=participant["site"],
    )
    for channel in wanted:
        try:
            if channel == "email":
                send_email(config, to=contact["email"], subject=message.subject, body=message.body)
            else:
                send_sms(config, to=contact["phone"], text=message.sms)
            result[channel] = None
        except DeliveryError as exc:
            result[channel] = str(exc)
            # The log names the assessment, never the address or the link.
            log.warning("%s %s failed for assessment %s: %s", kind, channel, assessment["id"], exc)
        _record(db, assessment, participant, kind, step, channel, result[channel], actor, role)
    return result


def _record(db, assessment, participant, kind, step, channel, error, actor, role) -> None:
    with write(db):
        db.execute(
            "INSERT INTO deliveries (assessment_id, kind, step, channel, status, error, actor,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                assessment["id"],
                kind,
                step,
                channel,
                "failed" if error else "sent",
                error,
                actor,
                stamp(),
            ),
        )
        audit.record(
            db,
            actor=actor,
            role=role,
            action=f"{kind}.{channel}",
            entity="assessment",
            entity_id=f"{participant['study_code']}/{assessment['timepoint']}",
            new={"status": "failed" if error else "sent", "step": step},
            reason=error,
        )
