"""Build apps, participants and invite links for tests (real database, real services)."""

from __future__ import annotations

import datetime as dt
import uuid

from pro_app import create_app
from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.domain.paths import visible_items
from pro_app.services import assessments, invites, journal, participants
from pro_app.services.submit import submit
from pro_app.storage.contacts import cipher_for
from pro_app.storage.schema import upgrade


def make_app(db_path, **config):
    """An app over a fresh, migrated database file."""
    app = create_app({"TESTING": True, "DATABASE": str(db_path), **config})
    with app.app_context():
        upgrade(get_db())
    return app


def local_today(app) -> dt.date:
    with app.app_context():
        zone = catalog_for(app).study.zone
    return dt.datetime.now(dt.UTC).astimezone(zone).date()


def enrol(
    app, code="BTB-0001", *, site="OUS", enrolled=-10, day0=3, language="nb", email=None, phone=None
) -> dict:
    """Enrol a participant with dates relative to today (so baseline is open with day0=3)."""
    today = local_today(app)
    with app.app_context():
        return participants.add(
            get_db(),
            catalog_for(app).study,
            code=code,
            site=site,
            enrolled=today + dt.timedelta(days=enrolled),
            day0=today + dt.timedelta(days=day0) if day0 is not None else None,
            language=language,
            email=email,
            phone=phone,
            cipher=cipher_for(app.config) if (email or phone) else None,
        )


def link_token(app, code: str, timepoint: str) -> str:
    """Issue an invite for code at timepoint; return the token (the path is /i/<token>)."""
    with app.app_context():
        db = get_db()
        person = participants.by_code(db, code)
        row = next(
            a for a in assessments.for_participant(db, person["id"]) if a["timepoint"] == timepoint
        )
        return invites.issue(db, row, person, actor="test", role="admin")


def _default(item):
    if item.type == "multiple_choice":
        return [item.options[0].code]
    if item.type == "integer":
        return item.min
    if item.type == "text":
        return "tekst"
    if item.type == "date":
        return "2020-01-15"
    return item.codes()[0]


def complete(definition, given: dict) -> dict:
    """The given answers plus a first-code answer to every other item on the path."""
    answers = dict(given)
    while missing := [i for i in visible_items(definition, answers) if i not in answers]:
        for item_id in missing:
            answers[item_id] = _default(definition.item(item_id))
    return answers


def answer(app, code, timepoint, questionnaire, *pages, done=True):
    """Save pages of answers through the journal, then (done) submit; like the web pages."""
    with app.app_context():
        db, catalog = get_db(), catalog_for(app)
        person = participants.by_code(db, code)
        row = next(
            a for a in assessments.for_participant(db, person["id"]) if a["timepoint"] == timepoint
        )
        definition = catalog.questionnaires[questionnaire]
        response = journal.start(db, row["id"], definition, actor="test", entity=timepoint)
        for number, values in enumerate(pages, 1):
            journal.save_page(db, response, number, values, save_id=uuid.uuid4().hex, actor="t")
        if done:
            submit(
                db,
                response=response,
                definition=definition,
                assessment=row,
                participant=person,
                timepoint_questionnaires=catalog.study.timepoint(timepoint).questionnaires,
                submission_id=uuid.uuid4().hex,
                actor="test",
            )
