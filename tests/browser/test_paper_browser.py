"""Paper forms in a real browser against gunicorn: print, PDF, entry, and the export.

One participant answers the baseline on a phone; a coordinator (desktop browser) opens the
print view of another participant's baseline (every item and option of the definitions, in
Norwegian; axe-core with no rule turned off), downloads the PDF, and enters the first
participant's answers from "paper" for the second. The csv-wide rows of the two then differ
only in who and when: study code, receipt code, submission times and the source.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from pro_app.catalog import catalog_for
from pro_app.cli.export import export_command
from pro_app.database import get_db
from pro_app.staff import accounts
from pro_app.storage.contacts import cipher_for
from tests.factories import local_today

from .conftest import PHONE, SCREENSHOTS
from .helpers import (
    OVERVIEW_URL,
    RECEIPT_URL,
    assert_lang,
    finish_questionnaire,
    first_open_task,
    report,
    send_in,
    start,
    tap_and_wait,
)

pytestmark = pytest.mark.slow

PHONE_CODE, PAPER_CODE = "BTB-0951", "BTB-0952"
COORDINATOR, PASSWORD = "papir@example.org", "papir skjema blyant viskelær"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "nb-NO", "accept_downloads": True}


def _coordinator(app) -> None:
    with app.app_context():
        db = get_db()
        accounts.add(
            db,
            catalog_for(app).study,
            cipher_for(app.config),
            email=COORDINATOR,
            role="coordinator",
            sites=("OUS",),
        )
        accounts.set_password(db, accounts.by_email(db, COORDINATOR), PASSWORD, actor="test")


@pytest.fixture(scope="module")
def walk(server, browser):
    """The whole story once; the tests below read what it saw."""
    seen: dict = {"axe": {}}
    phone_link = server.link(PHONE_CODE)
    server.link(PAPER_CODE)
    _coordinator(server.app)

    phone = browser.new_context(**PHONE)
    page = phone.new_page()
    start(page, phone_link)
    while not RECEIPT_URL.search(page.url):
        assert OVERVIEW_URL.search(page.url), page.url
        tap_and_wait(page, first_open_task(page))
        finish_questionnaire(page, server.app)
        send_in(page)
    phone.close()

    desk = browser.new_context(**DESKTOP)
    desk.set_default_timeout(15_000)
    staff = desk.new_page()
    staff.goto(f"{server.url}/staff/login")
    staff.fill("#email", COORDINATOR)
    staff.fill("#password", PASSWORD)
    tap_and_wait(staff, staff.get_by_role("button", name="Logg inn"))
    axe = Axe()

    staff.goto(f"{server.url}/staff/participants/{PAPER_CODE}")
    seen["axe"]["participant"] = axe.run(staff).response["violations"]
    tap_and_wait(staff, staff.locator(f"a[href$='/{PAPER_CODE}/baseline/paper']"))
    assert_lang(staff)
    seen["print_text"] = staff.locator("main").inner_text()
    seen["print_url"] = staff.url
    seen["axe"]["print"] = axe.run(staff).response["violations"]
    _shot(staff, "paper-print")
    with staff.expect_download() as download:
        staff.locator("a[href$='/baseline/paper.pdf']").click()  # «Last ned PDF»
    seen["pdf"] = download.value.path().read_bytes()

    staff.goto(f"{server.url}/staff/participants/{PAPER_CODE}/baseline/paper/entry")
    seen["axe"]["entries"] = axe.run(staff).response["violations"]
    answers = _phone_answers(server)
    for number, (qid, given) in enumerate(answers.items()):
        staff.goto(f"{server.url}/staff/participants/{PAPER_CODE}/baseline/paper/entry/{qid}")
        if number == 0:
            seen["axe"]["entry"] = axe.run(staff).response["violations"]
            _shot(staff, "paper-entry")
        _fill_entry(staff, given, local_today(server.app))
        tap_and_wait(staff, staff.locator("form.staff-form button[type=submit]"))
        seen.setdefault("after_entry", []).append(staff.url)
    desk.close()
    seen["answers"] = answers
    return seen


def _shot(page, name: str) -> None:
    if os.environ.get("PRO_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _phone_answers(server) -> dict:
    """{questionnaire: {item: value}} as the phone participant's submitted responses hold them."""
    found: dict = {}
    for qid, item, value in server.query(
        "SELECT r.questionnaire, a.item, a.value FROM answers a"
        " JOIN responses r ON r.id = a.response_id JOIN assessments s ON s.id = r.assessment_id"
        " JOIN participants p ON p.id = s.participant_id"
        " WHERE p.study_code = ? AND s.timepoint = 'baseline' AND r.status = 'submitted'"
        " AND a.id IN (SELECT MAX(id) FROM answers GROUP BY response_id, item) ORDER BY a.id",
        [PHONE_CODE],
    ):
        if value is not None:
            found.setdefault(qid, {})[item] = json.loads(value)
    return found


def _fill_entry(page, given: dict, day: dt.date) -> None:
    """Tick and write the answers on the entry page, as a coordinator reading the paper."""
    page.fill("#filled_on", day.isoformat())
    for item, value in given.items():
        if value == "declined":
            page.check(f"input[name=confirm_skip][value='{item}']")
        elif isinstance(value, list):
            for code in value:
                page.check(f"input[name='{item}'][value='{code}']")
        else:
            field = page.locator(f"[name='{item}']")
            kind = field.first.get_attribute("type")
            if kind in ("radio", "checkbox"):
                page.check(f"input[name='{item}'][value='{value}']")
            else:
                field.fill(str(value))


def _wide(server) -> dict:
    app = server.app
    app.cli.add_command(export_command)
    out = server.db_path.parent / "paper-wide.csv"
    result = app.test_cli_runner().invoke(args=["export", "--format", "csv-wide", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = csv.DictReader(io.StringIO(out.read_text("utf-8-sig"), newline=""))
    return {r["study_code"]: r for r in rows if r["timepoint"] == "baseline"}


def test_print_view_lists_every_item_and_option_in_norwegian(walk, server):
    text = " ".join(walk["print_text"].split())
    with server.app.app_context():
        catalog = catalog_for(server.app)
        baseline = catalog.study.timepoint("baseline").questionnaires
        for qid in baseline:
            q = catalog.questionnaires[qid]
            assert " ".join(q.title.nb.split()) in text
            for item in q.items:
                assert " ".join(item.text.nb.split()) in text, (qid, item.id)
                for option in getattr(item, "options", ()):
                    assert option.label.nb in text, (qid, item.id, option.code)
                if item.type == "yes_no":
                    assert item.yes.nb in text and item.no.nb in text
                if item.not_applicable:
                    assert item.not_applicable.nb in text
    assert PAPER_CODE in text and "Før første behandling" in text


def test_axe_finds_nothing_on_the_paper_pages(walk):
    problems = {name: report(v) for name, v in walk["axe"].items() if v}
    assert problems == {}, "\n".join(f"{k}:\n{v}" for k, v in problems.items())


def test_the_pdf_has_the_study_code(walk):
    data = walk["pdf"]
    assert data.startswith(b"%PDF")
    try:
        import pypdf
    except ImportError:  # pragma: no cover - pypdf is a test extra
        assert b"%%EOF" in data[-1024:]
        return
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    assert len(pages) > 5 and all(PAPER_CODE in p.extract_text() for p in pages)


def test_paper_entry_gives_the_phones_values_and_scores(walk, server):
    assert all(url.endswith("/baseline/paper/entry") for url in walk["after_entry"])
    wide = _wide(server)
    phone, paper = wide[PHONE_CODE], wide[PAPER_CODE]
    with server.app.app_context():
        baseline = catalog_for(server.app).study.timepoint("baseline").questionnaires
    assert set(walk["answers"]) == set(baseline)
    differ = {k for k in phone if phone[k] != paper[k]}
    expected = {"study_code", "receipt_code"}
    expected |= {f"{q}_submitted_at" for q in baseline} | {f"{q}_source" for q in baseline}
    assert differ == expected
    assert {paper[f"{q}_source"] for q in baseline} == {"paper"}
    assert {phone[f"{q}_source"] for q in baseline} == {"phone"}
    assert paper["receipt_code"] and phone["receipt_code"]


def test_the_entered_forms_are_listed_as_paper(walk, server, browser):
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    page.goto(f"{server.url}/staff/login")
    page.fill("#email", COORDINATOR)
    page.fill("#password", PASSWORD)
    tap_and_wait(page, page.get_by_role("button", name="Logg inn"))
    page.goto(f"{server.url}/staff/participants/{PAPER_CODE}/baseline/paper/entry")
    expect(page.locator("tbody tr")).to_have_count(len(walk["answers"]))
    assert page.locator("a[href*='/paper/entry/']").count() == 0  # nothing left to enter
    context.close()
