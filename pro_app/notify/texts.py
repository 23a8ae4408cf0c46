"""Fill in a study's message texts for one participant (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from babel.dates import format_date

PLACEHOLDERS = ("link", "last_day", "contact")


@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    sms: str


def render(study, kind: str, *, language: str, link: str, last_day: dt.date, site: str) -> Message:
    """Return the invite or reminder text in the participant's language."""
    if study.messages is None:
        raise LookupError("the study defines no 'messages' (invite and reminder texts)")
    text = getattr(study.messages, kind)
    contact_text = next(
        (s.contact.get(language) for s in study.sites if s.id == site and s.contact), ""
    )
    values = {
        "link": link,
        "last_day": format_date(last_day, format="long", locale=language),
        "contact": contact_text,
    }
    return Message(
        subject=text.subject.get(language).format(**values),
        body=text.body.get(language).format(**values),
        sms=text.sms.get(language).format(**values),
    )
