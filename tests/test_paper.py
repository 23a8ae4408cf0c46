"""Paper forms: printing, entry by staff, double data entry, and the source in the exports.

Real SQLite files, the real staff pages through the Flask test client (sign-in with TOTP),
the real services and the export command.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
import sqlite3
import uuid

import pytest

from pro_app.catalog import catalog_for
from pro_app.cli.export import export_command
from pro_app.domain.paths import visible_items
from pro_app.paper.compare import FILLED_ON, differences
from pro_app.paper.instructions import instruction
from pro_app.paper.layout import paper_form
from pro_app.settings import ROOT

from .conftest import definition
from .factories import answer, enrol, local_today, make_app
from .test_staff import PASSWORD, account, sign_in

BASELINE = "baseline"


# --- Helpers -----------------------------------------------------------------------------------


def mid_answers(q) -> dict:
    """A full set of answers on the path, away from the first codes (so scores mean something)."""

    def value(item):
        if item.type == "multiple_choice":
            return sorted({item.options[0].code, item.options[-1].code})
        if item.type == "integer":
            return (item.min + item.max) // 2
        if item.type == "text":
            return "Skrevet på papir, æøå"
        if item.type == "date":
            return "2020-01-15"
        codes = item.codes()
        return codes[len(codes) // 2]

    answers: dict = {}
    while missing := [i for i in visible_items(q, answers) if i not in answers]:
        for item_id in missing:
            answers[item_id] = value(q.item(item_id))
    return answers


def form_data(answers: dict, filled_on, reason: str = "", **extra) -> dict:
    """The post of a paper form as the entry page sends it."""
    data: dict = {"filled_on": str(filled_on), "reason": reason, "save_id": uuid.uuid4().hex}
    for item, value in answers.items():
        if value == "declined":
            data.setdefault("confirm_skip", []).append(item)
        elif isinstance(value, list):
            data[item] = [str(v) for v in value]
        else:
            data[item] = str(value)
    return {**data, **extra}


def query(app, sql, params=()):
    conn = sqlite3.connect(app.config["DATABASE"])
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def entry_url(code, qid, timepoint=BASELINE):
    return f"/staff/participants/{code}/{timepoint}/paper/entry/{qid}"


def text_of(reply) -> str:
    return html.unescape(reply.get_data(as_text=True))


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "p.sqlite", WTF_CSRF_ENABLED=False, STAFF_TOTP=True)
    app.cli.add_command(export_command)
    enrol(app, "BTB-0001", site="OUS")
    enrol(app, "BTB-0002", site="HUS")
    return app


@pytest.fixture
def staff(app):
    clients = {}
    for name, role, sites in (
        ("kari", "coordinator", ("OUS",)),
        ("ola", "coordinator", ("OUS",)),
        ("per", "investigator", ("OUS",)),
        ("bergen", "coordinator", ("HUS",)),
        ("dm", "data_manager", ()),
        ("admin", "admin", ()),
    ):
        email = f"{name}@example.org"
        _, secret = account(app, email, role, sites)
        clients[name] = sign_in(app, email, PASSWORD, secret)
        clients[name].get("/staff/?lang=en")  # messages are asserted in English
    return clients


def questionnaires(app):
    with app.app_context():
        return catalog_for(app).questionnaires


def today(app):
    return local_today(app)


# --- The paper form: layout and conditions in words -------------------------------------------

MADE_UP = """
id: made_up
version: "2.1"
title: {nb: Et skjema, en: A form}
instructions: {nb: Svar på alt., en: Answer everything.}
licence: {owner: Nobody, agreement_required: false, wording_note: Made up for a test.}
items:
  - {id: smoke, type: yes_no, text: {nb: "Røyker du?", en: "Do you smoke?"}}
  - id: many
    type: integer
    min: 0
    max: 80
    text: {nb: "Hvor mange om dagen?", en: "How many a day?"}
    show_if: {item: smoke, op: eq, value: 1}
  - id: mood
    type: single_choice
    text: {nb: Humør, en: Mood}
    options:
      - {code: 0, label: {nb: Dårlig, en: Bad}}
      - {code: 1, label: {nb: Middels, en: Fair}}
      - {code: 2, label: {nb: Godt, en: Good}}
  - id: why
    type: text
    text: {nb: "Hvorfor?", en: "Why?"}
    show_if: {item: mood, op: lt, value: 2}
  - id: pain
    type: scale
    min_label: {nb: Ingen, en: None}
    max_label: {nb: Verst, en: Worst}
    text: {nb: Smerte, en: Pain}
  - id: both
    type: text
    text: {nb: Begge, en: Both}
    skippable: true
    show_if:
      all:
        - {item: pain, op: ge, value: 7}
        - any: [{item: smoke, op: declined}, {item: mood, op: ne, value: 1}]
pages:
  - {title: {nb: Vaner, en: Habits}, items: [smoke]}
  - {title: {nb: Vaner, en: Habits}, items: [many]}
  - {items: [mood]}
  - {items: [why]}
  - {items: [pain]}
  - {items: [both]}
"""


def plain(text, **values):
    return text % values if values else text


def test_layout_numbers_every_item_and_merges_repeated_titles():
    form = paper_form(definition(MADE_UP))
    assert dict(form.numbers) == {"smoke": 1, "many": 2, "mood": 3, "why": 4, "pain": 5, "both": 6}
    assert [len(s.items) for s in form.sections] == [2, 4]
    assert form.sections[0].title.en == "Habits" and form.sections[1].title is None


def test_conditions_are_said_in_words_from_the_definition():
    q = definition(MADE_UP)
    numbers = paper_form(q).numbers

    def said(item_id, language="en"):
        return instruction(q.item(item_id).show_if, q, numbers, language, plain)

    assert said("many") == "Answer only if you answered “Yes” to question 1."
    assert said("many", "nb") == "Answer only if you answered “Ja” to question 1."
    assert said("why") == "Answer only if you answered “Bad” or “Fair” to question 3."
    assert said("both") == (
        "Answer only if your answer to question 5 is 7 or more and (you did not want to answer "
        "question 1 or you did not answer “Fair” to question 3)."
    )


def test_differences_list_the_fill_in_day_and_items_in_form_order():
    numbers = {"a": 1, "b": 2, "c": 3}
    first = {"a": 1, "b": [1, 2], "c": "x", FILLED_ON: "2026-01-02"}
    second = {"a": 1, "b": [2], FILLED_ON: "2026-01-03"}
    found = differences(numbers, first, second)
    assert [(d.item, d.number, d.first, d.second) for d in found] == [
        (FILLED_ON, None, "2026-01-02", "2026-01-03"),
        ("b", 2, [1, 2], [2]),
        ("c", 3, "x", None),
    ]


# --- Printing ---------------------------------------------------------------------------------


def test_print_view_has_every_item_and_option_in_the_participants_language(app, staff):
    reply = staff["kari"].get("/staff/participants/BTB-0001/baseline/paper")
    assert reply.status_code == 200 and reply.headers["Cache-Control"] == "no-store"
    page = text_of(reply)
    assert '<html lang="nb">' in page and "BTB-0001" in page
    with app.app_context():
        catalog = catalog_for(app)
        for qid in catalog.study.timepoint(BASELINE).questionnaires:
            q = catalog.questionnaires[qid]
            assert q.title.nb in page and f"{q.version}" in page
            for item in q.items:
                assert item.text.nb in page, (qid, item.id)
                for option in getattr(item, "options", ()):
                    assert option.label.nb in page, (qid, item.id, option.code)
                if item.show_if is not None:
                    form = paper_form(q)
                    number = form.numbers[item.show_if.item_ids()[0]]
                    assert f"question {number}." in page or f"spørsmål {number}." in page
    assert page.count('class="sheet-wrap"') == len(catalog.study.timepoint(BASELINE).questionnaires)
    assert "<script" not in page and "score" not in page.lower()


def test_pdf_has_the_study_code_and_the_questions(app, staff):
    reply = staff["per"].get("/staff/participants/BTB-0001/screening/paper.pdf")
    assert reply.status_code == 200 and reply.mimetype == "application/pdf"
    assert reply.data.startswith(b"%PDF")
    assert reply.headers["Content-Disposition"] == 'attachment; filename="BTB-0001-screening.pdf"'
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(reply.data))
    pages = [p.extract_text() for p in reader.pages]
    assert all("BTB-0001" in p for p in pages)  # the header is on every page
    first_item = questionnaires(app)["odi"].items[0].text.nb
    assert first_item in " ".join(" ".join(pages).split())


def test_blank_forms_leave_the_study_code_blank(app, staff):
    chooser = staff["bergen"].get("/staff/paper/blank")
    assert chooser.status_code == 200 and 'value="HUS"' in chooser.get_data(as_text=True)
    assert 'value="OUS"' not in chooser.get_data(as_text=True)
    other_site = staff["bergen"].get("/staff/paper/blank?timepoint=baseline&site=OUS&language=nb")
    assert other_site.status_code == 400
    page = staff["bergen"].get("/staff/paper/blank?timepoint=week1&site=HUS&language=en")
    assert page.status_code == 200
    text = text_of(page)
    assert '<html lang="en">' in text and "BTB-" not in text and "write-code" in text
    weekly = questionnaires(app)["nrs_weekly"]
    assert all(i.text.en in text for i in weekly.items)
    pdf = staff["bergen"].get("/staff/paper/blank.pdf?timepoint=week1&site=HUS&language=en")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_printing_and_entry_are_refused_by_role_and_site(app, staff):
    paths = [
        "/staff/participants/BTB-0001/baseline/paper",
        "/staff/participants/BTB-0001/baseline/paper/entry",
        entry_url("BTB-0001", "odi"),
    ]
    assert staff["dm"].get(paths[0]).status_code == 403
    assert staff["per"].get(paths[0]).status_code == 200
    assert staff["per"].get(paths[1]).status_code == 403  # investigators print, never enter
    for path in paths:
        assert staff["bergen"].get(path).status_code == 404  # another site: not even confirmed
        assert app.test_client().get(path).headers["Location"].startswith("/staff/login")
    posted = staff["bergen"].post(entry_url("BTB-0001", "odi"), data={"filled_on": "x"})
    assert posted.status_code == 404
    assert staff["kari"].get(entry_url("BTB-0001", "nrs_weekly")).status_code == 404  # not here


def test_participant_page_links_to_printing_and_entry(staff):
    page = staff["kari"].get("/staff/participants/BTB-0001").get_data(as_text=True)
    title = page[page.index("<title>") : page.index("</title>")]
    assert "paper" not in title  # the section is shown once, after the page's content
    assert "/staff/participants/BTB-0001/baseline/paper" in page
    assert "/staff/participants/BTB-0001/baseline/paper/entry" in page
    investigator = staff["per"].get("/staff/participants/BTB-0001").get_data(as_text=True)
    assert "/baseline/paper.pdf" in investigator and "/paper/entry" not in investigator
    manager = staff["dm"].get("/staff/participants/BTB-0001").get_data(as_text=True)
    assert "/paper" not in manager


# --- Single entry --------------------------------------------------------------------------


def export_rows(app, tmp_path, fmt="csv-wide"):
    out = tmp_path / f"{fmt}.csv"
    result = app.test_cli_runner().invoke(args=["export", "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"), newline="")))


def test_paper_entry_scores_and_exports_like_the_phone(app, staff, tmp_path):
    enrol(app, "BTB-0003", site="OUS")
    qs = questionnaires(app)
    with app.app_context():
        baseline = catalog_for(app).study.timepoint(BASELINE).questionnaires
    for qid in baseline:
        answers = mid_answers(qs[qid])
        answer(app, "BTB-0001", BASELINE, qid, answers)  # on the phone
        reply = staff["kari"].post(entry_url("BTB-0003", qid), data=form_data(answers, today(app)))
        assert reply.status_code == 302, text_of(reply)[:2000]
    scores = query(
        app,
        "SELECT p.study_code, r.questionnaire, s.score, s.value, s.reason FROM scores s"
        " JOIN responses r ON r.id = s.response_id JOIN assessments a ON a.id = r.assessment_id"
        " JOIN participants p ON p.id = a.participant_id ORDER BY 2, 3",
    )
    phone = [row[1:] for row in scores if row[0] == "BTB-0001"]
    paper = [row[1:] for row in scores if row[0] == "BTB-0003"]
    assert phone == paper and len(phone) > 10
    sources = dict(query(app, "SELECT entered_by, source FROM responses WHERE source = 'paper'"))
    assert sources == {"kari@example.org": "paper"}
    wide = {r["study_code"]: r for r in export_rows(app, tmp_path) if r["timepoint"] == BASELINE}
    differ = {k for k in wide["BTB-0001"] if wide["BTB-0001"][k] != wide["BTB-0003"][k]}
    expected = {"study_code", "receipt_code"} | {f"{q}_submitted_at" for q in baseline}
    assert differ == expected | {f"{q}_source" for q in baseline}
    assert {wide["BTB-0003"][f"{q}_source"] for q in baseline} == {"paper"}
    assert {wide["BTB-0001"][f"{q}_source"] for q in baseline} == {"phone"}
    long = [r for r in export_rows(app, tmp_path, "csv-long") if r["study_code"] == "BTB-0003"]
    assert {r["source"] for r in long if r["kind"] != "derived"} == {"paper"}
    # The timepoint is complete: one receipt code, an outbox message per response.
    assert wide["BTB-0003"]["receipt_code"]
    outbox = query(
        app,
        "SELECT o.payload FROM outbox o JOIN responses r ON r.id = o.response_id"
        " WHERE r.source = 'paper'",
    )
    assert len(outbox) == len(baseline)
    assert {json.loads(p)["source"] for (p,) in outbox} == {"paper"}
    phone_payloads = query(
        app,
        "SELECT o.payload FROM outbox o JOIN responses r ON r.id = o.response_id"
        " WHERE r.source = 'phone'",
    )
    assert phone_payloads and all("source" not in json.loads(p) for (p,) in phone_payloads)
    roles = query(
        app,
        "SELECT DISTINCT role FROM audit WHERE action = 'response.submit' AND actor = ?",
        ["kari@example.org"],
    )
    assert roles == [("coordinator",)]


def test_entry_uses_the_phones_validation(app, staff):
    q = questionnaires(app)["odi"]
    answers = mid_answers(q)
    client = staff["kari"]
    before = query(app, "SELECT COUNT(*) FROM responses")[0][0]
    bad = form_data(answers, today(app), odi1="9")
    reply = client.post(entry_url("BTB-0001", "odi"), data=bad)
    assert reply.status_code == 400
    assert 'href="#e-odi1-0"' in reply.get_data(as_text=True)
    missing = form_data({k: v for k, v in answers.items() if k != "odi2"}, today(app))
    assert client.post(entry_url("BTB-0001", "odi"), data=missing).status_code == 400
    skipped = {k: v for k, v in answers.items() if k != "odi8"}  # odi8 may be skipped
    blank = client.post(entry_url("BTB-0001", "odi"), data=form_data(skipped, today(app)))
    assert blank.status_code == 400 and "e-odi8-0" in blank.get_data(as_text=True)
    both = form_data(answers, today(app), confirm_skip="odi8")
    assert client.post(entry_url("BTB-0001", "odi"), data=both).status_code == 400
    no_day = form_data(answers, "")
    assert client.post(entry_url("BTB-0001", "odi"), data=no_day).status_code == 400
    assert query(app, "SELECT COUNT(*) FROM responses")[0][0] == before  # nothing saved
    declined = {**answers, "odi8": "declined"}
    ok = client.post(entry_url("BTB-0001", "odi"), data=form_data(declined, today(app)))
    assert ok.status_code == 302
    stored = query(app, "SELECT value FROM answers WHERE item = 'odi8'")
    assert stored == [('"declined"',)]


def test_answers_to_questions_not_asked_are_not_kept(app, staff):
    q = questionnaires(app)["shc"]
    answers = mid_answers(q)
    hidden = next(i for i in q.items if i.show_if is not None)
    answers[hidden.show_if.item] = 0  # not bothered: the follow-up is not asked
    answers = {k: v for k, v in answers.items() if k in visible_items(q, answers)}
    data = form_data(answers, today(app), **{hidden.id: "12"})
    reply = staff["kari"].post(entry_url("BTB-0001", "shc"), data=data, follow_redirects=True)
    assert reply.status_code == 200
    number = paper_form(q).numbers[hidden.id]
    assert f"Questions {number} were answered on the form but not asked" in text_of(reply)
    assert query(app, "SELECT COUNT(*) FROM answers WHERE item = ?", [hidden.id]) == [(0,)]


def test_a_questionnaire_answered_on_the_phone_refuses_paper(app, staff):
    q = questionnaires(app)["nrs"]
    answer(app, "BTB-0001", BASELINE, "nrs", mid_answers(q))
    day = today(app).isoformat()
    shown = staff["kari"].get(entry_url("BTB-0001", "nrs"), follow_redirects=True)
    assert f"Already answered on the phone on {day}" in text_of(shown)
    reply = staff["kari"].post(entry_url("BTB-0001", "nrs"), data=form_data(mid_answers(q), day))
    assert reply.status_code == 400 and f"on the phone on {day}" in text_of(reply)
    assert query(app, "SELECT COUNT(*) FROM responses WHERE questionnaire = 'nrs'") == [(1,)]
    # And a paper form, once in, refuses a second paper entry.
    rmdq = questionnaires(app)["rmdq"]
    first = staff["kari"].post(
        entry_url("BTB-0001", "rmdq"), data=form_data(mid_answers(rmdq), day)
    )
    assert first.status_code == 302
    again = staff["ola"].post(entry_url("BTB-0001", "rmdq"), data=form_data(mid_answers(rmdq), day))
    assert again.status_code == 400 and "Already entered from paper" in text_of(again)


def test_a_repeated_post_stores_one_response(app, staff):
    q = questionnaires(app)["nrs"]
    data = form_data(mid_answers(q), today(app))
    assert staff["kari"].post(entry_url("BTB-0001", "nrs"), data=data).status_code == 302
    assert staff["kari"].post(entry_url("BTB-0001", "nrs"), data=data).status_code == 302
    assert query(app, "SELECT COUNT(*) FROM responses WHERE questionnaire = 'nrs'") == [(1,)]


def test_a_phone_draft_is_superseded_with_an_audit_row(app, staff):
    q = questionnaires(app)["odi"]
    answer(app, "BTB-0001", BASELINE, "odi", {"odi1": 1, "odi2": 1}, done=False)
    draft_uuid = query(app, "SELECT uuid FROM responses WHERE questionnaire = 'odi'")[0][0]
    reply = staff["kari"].post(
        entry_url("BTB-0001", "odi"), data=form_data(mid_answers(q), today(app))
    )
    assert reply.status_code == 302
    found = query(
        app,
        "SELECT uuid, version, status, source, entered_by, filled_on FROM responses"
        " WHERE questionnaire = 'odi' ORDER BY version",
    )
    assert found[0] == (draft_uuid, 1, "superseded", "phone", None, None)
    assert found[1][1:] == (2, "submitted", "paper", "kari@example.org", today(app).isoformat())
    superseded = query(
        app,
        "SELECT actor, role, field, old_value, new_value, reason FROM audit"
        " WHERE action = 'response.supersede' AND entity_id = ?",
        [draft_uuid],
    )
    assert superseded == [
        ("kari@example.org", "coordinator", "status", "in_progress", "superseded",
         "a paper form was entered"),
    ]  # fmt: skip
    entered = query(app, "SELECT entity_id, new_value FROM audit WHERE action = 'paper.enter'")
    assert entered[0][0] == "BTB-0001/baseline/odi"
    assert json.loads(entered[0][1])["response"] == found[1][0]
    # The participant's audit history on their page shows the paper entry.
    history = staff["kari"].get("/staff/participants/BTB-0001").get_data(as_text=True)
    assert "paper.enter" in history


# --- Dates ----------------------------------------------------------------------------------


def test_the_day_filled_in_must_be_in_the_window_and_not_in_the_future(app, staff):
    q = questionnaires(app)["nrs"]
    answers, client = mid_answers(q), staff["kari"]
    first_day = dt.date.fromisoformat(
        query(
            app,
            "SELECT first_day FROM assessments a JOIN participants p ON p.id = a.participant_id"
            " WHERE p.study_code = 'BTB-0001' AND a.timepoint = 'baseline'",
        )[0][0]
    )
    tomorrow = today(app) + dt.timedelta(days=1)
    future = client.post(entry_url("BTB-0001", "nrs"), data=form_data(answers, tomorrow))
    assert future.status_code == 400 and "in the future" in text_of(future)
    early = first_day - dt.timedelta(days=1)
    before = client.post(entry_url("BTB-0001", "nrs"), data=form_data(answers, early))
    assert before.status_code == 400 and "before the window opened" in text_of(before)
    typed = form_data(answers, f"{today(app).day}.{today(app).month}.{today(app).year}")
    assert client.post(entry_url("BTB-0001", "nrs"), data=typed).status_code == 302
    assert query(app, "SELECT filled_on FROM responses") == [(today(app).isoformat(),)]


def test_late_entry_needs_a_reason_and_stops_after_the_late_days(app, staff):
    enrol(app, "BTB-0004", site="OUS", enrolled=-40, day0=-5)  # baseline closed 5 days ago
    enrol(app, "BTB-0005", site="OUS", enrolled=-60, day0=-20)  # closed 20 days ago (> 14)
    enrol(app, "BTB-0006", site="OUS", enrolled=-1, day0=20)  # baseline not open yet
    q = questionnaires(app)["nrs"]
    answers, client = mid_answers(q), staff["kari"]
    day = today(app) - dt.timedelta(days=6)  # filled in on the last day but one
    silent = client.post(entry_url("BTB-0004", "nrs"), data=form_data(answers, day))
    assert silent.status_code == 400 and "give the reason" in text_of(silent)
    reason = "Skjemaet kom i posten"
    late = client.post(entry_url("BTB-0004", "nrs"), data=form_data(answers, day, reason))
    assert late.status_code == 302
    assert query(app, "SELECT reason FROM audit WHERE action = 'paper.enter'") == [(reason,)]
    too_late = client.post(
        entry_url("BTB-0005", "nrs"), data=form_data(answers, today(app), "for sent")
    )
    assert too_late.status_code == 400 and "up to 14 days" in text_of(too_late)
    listed = client.get("/staff/participants/BTB-0005/baseline/paper/entry")
    assert "up to 14 days" in text_of(listed) and "paper/entry/nrs" not in text_of(listed)
    upcoming = client.get(entry_url("BTB-0006", "nrs"), follow_redirects=True)
    assert "opens on" in text_of(upcoming)
    assert query(app, "SELECT COUNT(*) FROM responses") == [(1,)]


def test_a_withdrawn_participant_refuses_entry(app, staff):
    staff["kari"].post("/staff/participants/BTB-0001/withdraw", data={"reason": "Ønsket selv"})
    q = questionnaires(app)["nrs"]
    reply = staff["kari"].post(
        entry_url("BTB-0001", "nrs"), data=form_data(mid_answers(q), today(app))
    )
    assert reply.status_code == 400 and "withdrawn" in text_of(reply)


# --- Double data entry ------------------------------------------------------------------------


@pytest.fixture
def double_app(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    text = (ROOT / "studies" / "backtobasic.yaml").read_text("utf-8")
    assert "paper: {double_entry: false, late_entry_days: 14}" in text
    text = text.replace("double_entry: false", "double_entry: true")
    (studies / "backtobasic.yaml").write_text(text, "utf-8")
    app = make_app(
        tmp_path / "d.sqlite",
        WTF_CSRF_ENABLED=False,
        STAFF_TOTP=True,
        STUDIES_DIR=str(studies),
        STUDY=str(studies / "backtobasic.yaml"),
    )
    app.cli.add_command(export_command)
    enrol(app, "BTB-0001", site="OUS")
    return app


@pytest.fixture
def double_staff(double_app):
    clients = {}
    for name in ("kari", "ola", "tone"):
        email = f"{name}@example.org"
        _, secret = account(double_app, email, "coordinator", ("OUS",))
        clients[name] = sign_in(double_app, email, PASSWORD, secret)
        clients[name].get("/staff/?lang=en")  # messages are asserted in English
    return clients


def test_double_entry_lists_exactly_the_differences_and_resolves_to_one_response(
    double_app, double_staff, tmp_path
):
    app, staff = double_app, double_staff
    q = questionnaires(app)["odi"]
    right = mid_answers(q)
    wrong = dict(right)
    changed = ["odi2", "odi5", "odi9"]
    for item in changed:
        codes = q.item(item).codes()
        wrong[item] = codes[0] if right[item] != codes[0] else codes[1]
    url = entry_url("BTB-0001", "odi")
    day = today(app)
    first = staff["kari"].post(url, data=form_data(right, day))
    assert first.status_code == 302
    assert query(app, "SELECT COUNT(*) FROM responses") == [(0,)]  # not a response yet
    mine = staff["kari"].post(url, data=form_data(wrong, day))
    assert mine.status_code == 400 and "different staff member" in text_of(mine)
    again = staff["kari"].get(url, follow_redirects=True)
    assert "different staff member" in text_of(again) and "Waiting for the second" in text_of(again)
    second = staff["ola"].post(url, data=form_data(wrong, day))
    assert second.status_code == 302 and second.headers["Location"].endswith(url + "/compare")
    assert query(app, "SELECT COUNT(*) FROM responses") == [(0,)]
    listed = staff["ola"].get(url + "/compare")
    page = listed.get_data(as_text=True)
    assert re.findall(r'data-item="([^"]+)"', page) == changed
    assert export_rows(app, tmp_path) == []  # nothing counts as submitted yet
    # A third coordinator sees the differences but does not resolve them.
    outsider = staff["tone"].post(url + "/compare", data=form_data(right, day))
    assert outsider.status_code == 400 and "Only the two staff members" in text_of(outsider)
    assert query(app, "SELECT COUNT(*) FROM paper_resolutions") == [(0,)]
    # Entry 1 had it right: resolve with the paper's values.
    chosen = {item: right[item] for item in changed}
    data = {k: v for k, v in form_data(chosen, day).items() if k not in ("filled_on", "save_id")}
    data["submission_id"] = uuid.uuid4().hex
    resolved = staff["kari"].post(url + "/compare", data=data)
    assert resolved.status_code == 302, text_of(resolved)[:3000]
    responses = query(app, "SELECT status, source, entered_by, filled_on FROM responses")
    assert responses == [
        ("submitted", "paper", "kari@example.org,ola@example.org", day.isoformat())
    ]
    stored = dict(query(app, "SELECT item, value FROM answers"))
    assert {k: json.loads(v) for k, v in stored.items()} == right
    actions = query(
        app,
        "SELECT action, actor, field FROM audit WHERE action LIKE 'paper.%' ORDER BY id",
    )
    assert actions == [
        ("paper.entry", "kari@example.org", "entry 1"),
        ("paper.entry", "ola@example.org", "entry 2"),
        *[("paper.resolve", "kari@example.org", item) for item in changed],
        ("paper.enter", "kari@example.org", None),
    ]
    assert query(app, "SELECT COUNT(*) FROM paper_entries") == [(2,)]
    wide = export_rows(app, tmp_path)
    assert len(wide) == 1 and wide[0]["odi_source"] == "paper"
    assert [wide[0][item] for item in changed] == [str(right[i]) for i in changed]
    # The entries and resolutions never change.
    conn = sqlite3.connect(app.config["DATABASE"])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE paper_entries SET answers = '{}'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM paper_resolutions")
    conn.close()


def test_double_entry_that_agrees_is_submitted_at_the_second_entry(double_app, double_staff):
    app, staff = double_app, double_staff
    q = questionnaires(app)["nrs"]
    url = entry_url("BTB-0001", "nrs")
    answers = mid_answers(q)
    assert staff["kari"].post(url, data=form_data(answers, today(app))).status_code == 302
    second = staff["ola"].post(url, data=form_data(answers, today(app)))
    assert second.status_code == 302 and second.headers["Location"].endswith("/paper/entry")
    assert query(app, "SELECT status, source FROM responses") == [("submitted", "paper")]


def test_double_entry_resolves_a_different_fill_in_day(double_app, double_staff):
    app, staff = double_app, double_staff
    q = questionnaires(app)["nrs"]
    url = entry_url("BTB-0001", "nrs")
    answers = mid_answers(q)
    yesterday = today(app) - dt.timedelta(days=1)
    assert staff["kari"].post(url, data=form_data(answers, today(app))).status_code == 302
    assert staff["ola"].post(url, data=form_data(answers, yesterday)).status_code == 302
    page = staff["ola"].get(url + "/compare").get_data(as_text=True)
    assert re.findall(r'data-item="([^"]+)"', page) == [FILLED_ON]
    missing = staff["ola"].post(url + "/compare", data={"submission_id": "a" * 32})
    assert missing.status_code == 400
    done = staff["ola"].post(
        url + "/compare", data={"filled_on": yesterday.isoformat(), "submission_id": "b" * 32}
    )
    assert done.status_code == 302
    assert query(app, "SELECT filled_on FROM responses") == [(yesterday.isoformat(),)]
    assert query(app, "SELECT item, value FROM paper_resolutions") == [
        (FILLED_ON, json.dumps(yesterday.isoformat()))
    ]


def test_migration_gives_every_existing_response_the_phone_source(app):
    answer(app, "BTB-0001", "screening", "nrs", mid_answers(questionnaires(app)["nrs"]))
    answer(app, "BTB-0001", BASELINE, "nrs", {"nrs_current": 3}, done=False)
    assert query(app, "SELECT source, entered_by, filled_on FROM responses") == [
        ("phone", None, None),
        ("phone", None, None),
    ]
    conn = sqlite3.connect(app.config["DATABASE"])
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE responses SET source = 'fax' WHERE status = 'in_progress'")
    conn.close()


def test_fhir_and_stats_files_carry_the_source(app, staff, tmp_path):
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    q = questionnaires(app)["nrs"]
    answer(app, "BTB-0001", "screening", "nrs", mid_answers(q))
    filled = today(app) - dt.timedelta(days=1)
    data = form_data(mid_answers(q), filled)
    assert staff["kari"].post(entry_url("BTB-0001", "nrs"), data=data).status_code == 302
    out = tmp_path / "r.json"
    result = app.test_cli_runner().invoke(args=["export", "--format", "fhir", "-o", str(out)])
    assert result.exit_code == 0, result.output
    bundle = json.loads(out.read_text("utf-8"))
    Bundle.model_validate(bundle)
    found = {}
    for entry in bundle["entry"]:
        QuestionnaireResponse.model_validate(entry["resource"])
        extensions = {e["url"].rsplit("/", 1)[1]: e for e in entry["resource"]["extension"]}
        found[extensions["timepoint"]["valueCode"]] = extensions
    assert found["screening"]["source"]["valueCode"] == "phone"
    assert "filled-on" not in found["screening"]
    assert found[BASELINE]["source"]["valueCode"] == "paper"
    assert found[BASELINE]["filled-on"]["valueDate"] == filled.isoformat()
    wide = {r["timepoint"]: r for r in export_rows(app, tmp_path)}
    assert wide[BASELINE]["actual_date"] == filled.isoformat()  # the day filled in, not entered
    pyreadstat = pytest.importorskip("pyreadstat")
    sav = tmp_path / "w.sav"
    result = app.test_cli_runner().invoke(args=["export", "--format", "sav", "-o", str(sav)])
    assert result.exit_code == 0, result.output
    frame, meta = pyreadstat.read_sav(str(sav))
    assert meta.readstat_variable_types["nrs_source"] == "string"
    assert sorted(frame["nrs_source"]) == ["paper", "phone"]
    codebook = {r["name"]: r for r in export_rows(app, tmp_path, "codebook")}
    assert codebook["nrs_source"]["kind"] == "response"
    assert codebook["nrs_source"]["codes_en"].startswith("phone=Phone")
