"""`flask demo`: seed a demo study with participants in different states, print links."""

from __future__ import annotations

import datetime as dt
import uuid

import click
from flask import current_app
from flask.cli import with_appcontext

from ..catalog import catalog_for
from ..database import get_db
from ..services import assessments, invites, journal, participants
from ..services.submit import submit
from ..staff import accounts
from ..storage.contacts import cipher_for
from ..storage.db import utc_now
from ..storage.schema import upgrade
from .common import catalog_or_exit

# (code, site, enrolled, day0, language) with days relative to today.
PEOPLE = (
    ("BTB-0001", "OUS", -10, 3, "nb"),  # screening and baseline open
    ("BTB-0002", "OUS", -60, -36, "nb"),  # week 5 open and late; day 28 missed
    ("BTB-0003", "HUS", -2, None, "en"),  # screening open, day 0 not set
    ("BTB-0004", "STO", -20, 2, "nb"),  # screening completed, baseline open
)


def _answer_all(db, catalog, participant, assessment) -> None:
    """Fill and submit every questionnaire of an assessment with mid-scale answers."""
    study = catalog.study
    for qid in study.timepoint(assessment["timepoint"]).questionnaires:
        definition = catalog.questionnaires[qid]
        response = journal.start(
            db, assessment["id"], definition, actor="demo", entity=assessment["timepoint"]
        )
        values = {}
        for item in definition.items:
            codes = item.codes() if hasattr(item, "codes") else None
            if item.numeric and codes:
                values[item.id] = sorted(codes)[len(codes) // 2]
            elif item.numeric:
                values[item.id] = item.code_range()[0]
        journal.save_page(
            db, response, 1, values, save_id=uuid.uuid4().hex, actor="demo", role="demo"
        )
        answers = journal.current_answers(db, response["id"])
        for item in definition.items:  # anything still empty is declined, as a person would
            if item.id not in answers:
                answers[item.id] = "declined"
        journal.save_page(
            db, response, 1, answers, save_id=uuid.uuid4().hex, actor="demo", role="demo"
        )
        submit(
            db,
            response=response,
            definition=definition,
            assessment=assessment,
            participant=participant,
            timepoint_questionnaires=study.timepoint(assessment["timepoint"]).questionnaires,
            submission_id=uuid.uuid4().hex,
            actor="demo",
        )


@click.command("demo")
@with_appcontext
def demo():
    """Seed demo participants (only with PRO_DEMO set) and print links to open on a phone."""
    if not current_app.config.get("DEMO"):
        raise click.ClickException("demo data goes only into a demo instance: set PRO_DEMO=1")
    catalog = catalog_or_exit()
    db = get_db()
    upgrade(db)
    today = utc_now().astimezone(catalog.study.zone).date()
    cipher = cipher_for(current_app.config)
    for code, site, enrolled, day0, language in PEOPLE:
        if participants.by_code(db, code) is None:
            participants.add(
                db,
                catalog.study,
                code=code,
                site=site,
                enrolled=today + dt.timedelta(days=enrolled),
                day0=today + dt.timedelta(days=day0) if day0 is not None else None,
                language=language,
                email=f"{code.lower()}@example.org",
                cipher=cipher,
                actor="demo",
                role="demo",
            )
            if code == "BTB-0004":
                person = participants.by_code(db, code)
                screening = assessments.for_participant(db, person["id"])[0]
                _answer_all(db, catalog_for(current_app), person, screening)
    _demo_staff(db, catalog.study, cipher)
    _print_links(db, catalog)


DEMO_STAFF = (
    ("koordinator@example.org", "coordinator", ("OUS", "HUS", "STO")),
    ("datahandterer@example.org", "data_manager", ()),
)
DEMO_PASSWORD = "demo-passord-2026"


def _demo_staff(db, study, cipher) -> None:
    """Staff accounts with a known password (demo only; no second factor in the demo)."""
    for email, role, sites in DEMO_STAFF:
        if accounts.by_email(db, email) is None:
            accounts.add(
                db,
                study,
                cipher,
                email=email,
                role=role,
                sites=sites,
                actor="demo",
                actor_role="demo",
            )
            accounts.set_password(db, accounts.by_email(db, email), DEMO_PASSWORD, actor="demo")
    base = current_app.config["BASE_URL"]
    names = ", ".join(email for email, _, _ in DEMO_STAFF)
    click.echo(f"Staff pages: {base}/staff/login as {names}, password {DEMO_PASSWORD}")


def _print_links(db, catalog) -> None:
    now = utc_now()
    base = current_app.config["BASE_URL"]
    click.echo("Demo participants (links are new each time; open one on a phone):")
    for code, *_ in PEOPLE:
        person = participants.by_code(db, code)
        for row in assessments.for_participant(db, person["id"]):
            state = assessments.state(db, row, catalog.study, now)
            if state in ("open", "in_progress", "late"):
                token = invites.issue(db, row, person, actor="demo", role="demo")
                click.echo(
                    f"  {code} {row['timepoint']:<9} {state:<11} {invites.link(base, token)}"
                )
