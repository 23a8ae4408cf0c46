"""The participant's pages in a real phone-sized browser against a real server."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from .conftest import PHONE
from .helpers import (
    OVERVIEW_URL,
    PAGE_URL,
    RECEIPT_CODE,
    RECEIPT_URL,
    REVIEW_URL,
    answer_page,
    assert_lang,
    finish_questionnaire,
    first_open_task,
    open_questionnaire,
    send_in,
    start,
    tap_and_wait,
    tap_next,
)

pytestmark = pytest.mark.slow

BASELINE = ("odi", "nrs", "rmdq", "hscl25", "fabq", "shc", "background")
OFFLINE_TEXT = re.compile(r"^Du er uten nett")
RESEND_SECONDS = 30  # three resends at 5 s, with room for a busy CI machine


def _response_id(server, code: str, qid: str) -> int:
    rows = server.query(
        "SELECT r.id FROM responses r JOIN assessments a ON a.id = r.assessment_id"
        " JOIN participants p ON p.id = a.participant_id"
        " WHERE p.study_code = ? AND r.questionnaire = ? AND r.status != 'superseded'",
        (code, qid),
    )
    assert len(rows) == 1, f"expected one response for {code}/{qid}, found {rows}"
    return rows[0][0]


# --- a. The whole baseline, tapped through ---------------------------------------------------


def test_whole_baseline_in_norwegian(server, page, shoot):
    start(page, server.link("BTB-1001"))
    expect(page).to_have_url(OVERVIEW_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Skjemaene dine")
    shoot(page, "overview")
    sent = []
    for _ in range(len(BASELINE) + 1):
        if RECEIPT_URL.search(page.url):
            break
        expect(page).to_have_url(OVERVIEW_URL)
        assert_lang(page)
        tap_and_wait(page, first_open_task(page))
        qid = finish_questionnaire(page, server.app, how="middle" if len(sent) % 2 else "first")
        if qid == "nrs":
            shoot(page, "review")
        send_in(page)
        sent.append(qid)
    assert sorted(sent) == sorted(BASELINE), sent
    expect(page).to_have_url(RECEIPT_URL)
    assert_lang(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Svarene dine er sendt inn")
    code = page.locator("strong.code").inner_text().strip()
    assert RECEIPT_CODE.match(code), code
    shoot(page, "receipt")
    statuses = server.query(
        "SELECT r.questionnaire, r.status FROM responses r JOIN assessments a"
        " ON a.id = r.assessment_id JOIN participants p ON p.id = a.participant_id"
        " WHERE p.study_code = 'BTB-1001'"
    )
    assert sorted(statuses) == sorted((q, "submitted") for q in BASELINE)
    stored = server.query(
        "SELECT a.receipt_code FROM assessments a JOIN participants p ON p.id = a.participant_id"
        " WHERE p.study_code = 'BTB-1001' AND a.timepoint = 'baseline'"
    )
    assert stored == [(code,)]


# --- c. A save that fails in flight is kept, shown and resent once ----------------------------


def _choose_scale(page, value: int) -> None:
    page.locator(f"label.scale-box:has(input[value='{value}'])").click()
    expect(page.locator(f"input[type=radio][value='{value}']")).to_be_checked()


def _assert_offline_notice(page, value: int) -> None:
    notice = page.locator("[data-offline-notice]")
    expect(notice).to_be_visible()
    expect(notice).to_have_text(OFFLINE_TEXT)
    expect(page.locator(f"input[type=radio][value='{value}']")).to_be_checked()


def _assert_stored_once(server, code: str, item: str, value: int, page_number: int) -> None:
    response_id = _response_id(server, code, "nrs")
    answers = server.query(
        "SELECT value FROM answers WHERE response_id = ? AND item = ?", (response_id, item)
    )
    assert answers == [(json.dumps(value),)], answers
    saves = server.query(
        "SELECT COUNT(*) FROM page_saves WHERE response_id = ? AND page = ?",
        (response_id, page_number),
    )
    assert saves == [(1,)], f"page {page_number} was saved {saves[0][0]} times"


def _assert_review_shows(page, server, question_start: str, value: int) -> None:
    page.goto(f"{server.url}/a/nrs/review")
    row = page.locator(".summary-row", has=page.locator("dt", has_text=question_start))
    expect(row.locator("dd").first).to_have_text(str(value))


def test_offline_save_aborted_in_flight_is_resent_once(server, page, shoot):
    code = "BTB-1011"
    start(page, server.link(code))
    open_questionnaire(page, server.url, "nrs", 1)
    _choose_scale(page, 6)
    page.route("**/a/nrs/*", lambda route: route.abort())
    page.get_by_role("button", name="Neste", exact=True).click()
    _assert_offline_notice(page, 6)
    expect(page).to_have_url(re.compile(r"/a/nrs/1(\?.*)?$"))
    shoot(page, "offline-notice")
    page.unroute("**/a/nrs/*")
    page.wait_for_url(re.compile(r"/a/nrs/2(\?.*)?$"), timeout=RESEND_SECONDS * 1000)
    assert_lang(page)
    _assert_stored_once(server, code, "nrs_current", 6, 1)
    _assert_review_shows(page, server, "Hvor sterke er smertene i korsryggen nå", 6)


def test_offline_reply_lost_after_server_saved_is_resent_once(server, page):
    """The server stores the page but the reply never arrives: the resend must not save twice."""
    code = "BTB-1012"
    start(page, server.link(code))
    open_questionnaire(page, server.url, "nrs", 2)
    _choose_scale(page, 8)
    delivered = []

    def lose_reply(route):
        if route.request.method == "POST":
            delivered.append(route.fetch(max_redirects=0).status)
        route.abort()

    page.route("**/a/nrs/*", lose_reply)
    page.get_by_role("button", name="Neste", exact=True).click()
    _assert_offline_notice(page, 8)
    assert delivered == [302], delivered
    page.unroute("**/a/nrs/*")
    page.wait_for_url(re.compile(r"/a/nrs/3(\?.*)?$"), timeout=RESEND_SECONDS * 1000)
    _assert_stored_once(server, code, "nrs_worst", 8, 2)
    _assert_review_shows(page, server, "Hvor sterke var smertene", 8)


def test_offline_context_then_back_online_resends_once(server, context, page):
    code = "BTB-1013"
    start(page, server.link(code))
    open_questionnaire(page, server.url, "nrs", 3)
    _choose_scale(page, 2)
    context.set_offline(True)
    page.get_by_role("button", name="Neste", exact=True).click()
    _assert_offline_notice(page, 2)
    expect(page).to_have_url(re.compile(r"/a/nrs/3(\?.*)?$"))
    context.set_offline(False)
    page.wait_for_url(REVIEW_URL, timeout=RESEND_SECONDS * 1000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Se over svarene dine")
    _assert_stored_once(server, code, "nrs_usual", 2, 3)
    _assert_review_shows(page, server, "Hvor sterke har smertene", 2)


# --- d. Double submit ------------------------------------------------------------------------


def _answer_nrs(page, server) -> None:
    open_questionnaire(page, server.url, "nrs", 1)
    finish_questionnaire(page, server.app)


def test_double_submit_from_taps_and_two_tabs_stores_once(server, context, page):
    code = "BTB-1021"
    start(page, server.link(code))
    _answer_nrs(page, server)
    review_url = page.url
    second = context.new_page()
    second.goto(review_url)
    expect(second.get_by_role("button", name="Send inn")).to_be_visible()
    # Rapid taps in the first tab, a tap in the second tab and raw posts with the
    # first tab's form (what a browser without the script sends) all at once.
    tap_five = (
        "() => { const b = document.querySelector('form[data-save-form] button');"
        " for (let i = 0; i < 5; i++) b.click(); }"
    )
    raw_posts = (
        "() => { const f = document.querySelector('form[data-save-form]');"
        " const posts = [];"
        " for (let i = 0; i < 6; i++) {"
        "   const body = new URLSearchParams(new FormData(f));"
        "   if (i % 2) body.set('submission_id', 'extra-' + i);"
        "   posts.push(fetch(location.href, {method: 'POST', body: body,"
        "     credentials: 'same-origin'}).then(r => r.status)); }"
        " return Promise.all(posts); }"
    )
    with page.expect_navigation(url=OVERVIEW_URL), second.expect_navigation(url=OVERVIEW_URL):
        second.evaluate(tap_five)  # its save starts; the raw posts below run alongside
        statuses = page.evaluate(raw_posts)
        page.evaluate(tap_five)
    assert statuses == [200] * 6, statuses
    for tab in (page, second):
        assert_lang(tab)
        row = tab.locator("li.task", has_text="Smerter i korsryggen")
        expect(row.locator(".tag-done")).to_have_text("Sendt inn")
    response_id = _response_id(server, code, "nrs")
    submitted = server.query(
        "SELECT COUNT(*) FROM responses WHERE id = ? AND status = 'submitted'", (response_id,)
    )
    assert submitted == [(1,)]
    submitted_any = server.query(
        "SELECT COUNT(*) FROM responses r JOIN assessments a ON a.id = r.assessment_id"
        " JOIN participants p ON p.id = a.participant_id"
        " WHERE p.study_code = ? AND r.questionnaire = 'nrs' AND r.status = 'submitted'",
        (code,),
    )
    assert submitted_any == [(1,)]
    outbox = server.query(
        "SELECT COUNT(*) FROM outbox WHERE json_extract(payload, '$.study_code') = ?"
        " AND json_extract(payload, '$.questionnaire') = 'nrs'",
        (code,),
    )
    assert outbox == [(1,)], f"{outbox[0][0]} outbox rows for one submitted questionnaire"
    by_response = server.query("SELECT COUNT(*) FROM outbox WHERE response_id = ?", (response_id,))
    assert by_response == [(1,)]
    scores = server.query("SELECT COUNT(*) FROM scores WHERE response_id = ?", (response_id,))
    assert scores == [(1,)]


def test_submit_whose_reply_is_lost_is_resent_once(server, page):
    """«Send inn» reaches the server but the reply is lost: the resend must not submit twice."""
    code = "BTB-1022"
    start(page, server.link(code))
    _answer_nrs(page, server)
    delivered = []

    def lose_reply(route):
        if route.request.method == "POST":
            delivered.append(route.fetch(max_redirects=0).status)
        route.abort()

    page.route("**/a/nrs/review", lose_reply)
    page.get_by_role("button", name="Send inn").click()
    expect(page.locator("[data-offline-notice]")).to_have_text(OFFLINE_TEXT)
    assert delivered == [302], delivered
    page.unroute("**/a/nrs/review")
    page.wait_for_url(OVERVIEW_URL, timeout=RESEND_SECONDS * 1000)
    row = page.locator("li.task", has_text="Smerter i korsryggen")
    expect(row.locator(".tag-done")).to_have_text("Sendt inn")
    response_id = _response_id(server, code, "nrs")
    assert server.query("SELECT status FROM responses WHERE id = ?", (response_id,)) == [
        ("submitted",)
    ]
    outbox = server.query("SELECT COUNT(*) FROM outbox WHERE response_id = ?", (response_id,))
    assert outbox == [(1,)]


# --- e. Resume in a new browser context --------------------------------------------------------


def test_resume_in_new_context_lands_on_first_unanswered_page(server, browser, context, page):
    code = "BTB-1031"
    link = server.link(code)
    start(page, link)
    open_questionnaire(page, server.url, "odi", 1)
    chosen = {}
    for number in (1, 2):
        expect(page).to_have_url(re.compile(rf"/a/odi/{number}(\?.*)?$"))
        answer_page(page, server.app, how="middle")
        radio = page.locator("form.page input:checked")
        expect(radio).to_have_count(1)
        chosen[number] = (radio.get_attribute("name"), radio.get_attribute("value"))
        tap_next(page)
    expect(page).to_have_url(re.compile(r"/a/odi/3(\?.*)?$"))
    context.close()

    fresh = browser.new_context(**PHONE)
    try:
        again = fresh.new_page()
        start(again, link)
        expect(again).to_have_url(re.compile(r"/a/odi/3(\?.*)?$"))
        assert_lang(again)
        expect(again.locator("form.page input:checked")).to_have_count(0)
        tap_and_wait(again, again.get_by_role("button", name="Tilbake"))
        expect(again).to_have_url(re.compile(r"/a/odi/2(\?.*)?$"))
        name, value = chosen[2]
        expect(again.locator(f"input[name='{name}'][value='{value}']")).to_be_checked()
        again.goto(f"{server.url}/a/odi/1")
        name, value = chosen[1]
        expect(again.locator(f"input[name='{name}'][value='{value}']")).to_be_checked()
    finally:
        fresh.close()


# --- f. Language ----------------------------------------------------------------------------


def test_switch_to_english_keeps_the_answer(server, page):
    start(page, server.link("BTB-1041"))
    open_questionnaire(page, server.url, "odi", 1)
    expect(page.get_by_role("button", name="Neste", exact=True)).to_be_visible()
    radio = page.locator("form.page input[type=radio]").nth(3)
    name, value = radio.get_attribute("name"), radio.get_attribute("value")
    page.locator(f"label[for='{radio.get_attribute('id')}']").click()
    tap_and_wait(page, page.get_by_role("button", name="English"))
    assert_lang(page, "en")
    expect(page).to_have_url(re.compile(r"/a/odi/1(\?lang=en)?$"))
    expect(page.get_by_role("button", name="Next", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Back", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Norsk (bokmål)")).to_be_visible()
    expect(page.locator(f"input[name='{name}'][value='{value}']")).to_be_checked()
    # The language stays with the session on the next page.
    tap_next(page, "Next")
    expect(page).to_have_url(re.compile(r"/a/odi/2(\?.*)?$"))
    assert_lang(page, "en")
    expect(page.get_by_role("button", name="Next", exact=True)).to_be_visible()


# --- g. Service worker, manifest and the offline page ------------------------------------------


def test_service_worker_manifest_and_offline_page(server, context, page, shoot):
    start(page, server.link("BTB-1051"))
    state = page.evaluate(
        "() => navigator.serviceWorker.ready.then(r => r.active ? r.active.state : null)"
    )
    assert state in ("activating", "activated"), state
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    manifest_href = page.locator("link[rel=manifest]").get_attribute("href")
    reply = context.request.get(f"{server.url}{manifest_href}")
    assert reply.ok
    assert reply.headers["content-type"].startswith("application/manifest+json")
    manifest = reply.json()
    assert manifest["name"]
    assert manifest["start_url"]
    assert manifest["icons"]
    for icon in manifest["icons"]:
        got = context.request.get(f"{server.url}{icon['src']}")
        assert got.ok, icon
        assert got.headers["content-type"].split(";")[0] == icon["type"], icon
    assert any(i["type"] == "image/png" and "512" in i["sizes"] for i in manifest["icons"])

    context.set_offline(True)
    try:
        page.goto(f"{server.url}/a/odi/1")
        expect(page.get_by_role("heading", level=1)).to_have_text("Du er uten nett")
        assert_lang(page)
        shoot(page, "offline")
    finally:
        context.set_offline(False)
    page.goto(f"{server.url}/a/odi/1")
    expect(page.locator("form.page")).to_be_visible()
    assert PAGE_URL.search(page.url)


# --- More of the offline story: a reload, a lost session, a changed answer -----------------------


def test_pending_save_is_resent_when_the_page_is_opened_again(server, context, page):
    """Answers kept in IndexedDB go out once the page is loaded again (not only by the timer)."""
    code = "BTB-1014"
    start(page, server.link(code))
    open_questionnaire(page, server.url, "nrs", 1)
    _choose_scale(page, 4)
    context.set_offline(True)
    page.get_by_role("button", name="Neste", exact=True).click()
    _assert_offline_notice(page, 4)
    context.set_offline(False)
    page.goto(f"{server.url}/a/nrs/1")  # before the 5 s retry fires
    page.wait_for_url(re.compile(r"/a/nrs/2(\?.*)?$"), timeout=RESEND_SECONDS * 1000)
    _assert_stored_once(server, code, "nrs_current", 4, 1)


def test_save_after_the_session_ended_is_sent_when_the_link_is_opened_again(server, context, page):
    code = "BTB-1015"
    link = server.link(code)
    start(page, link)
    open_questionnaire(page, server.url, "nrs", 1)
    _choose_scale(page, 9)
    context.clear_cookies()  # the session is gone (idle end, or the cookie was cleared)
    page.get_by_role("button", name="Neste", exact=True).click()
    notice = page.locator("[data-offline-notice]")
    expect(notice).to_have_text(re.compile(r"^Svarene på denne siden er ikke lagret ennå"))
    expect(page.locator("input[type=radio][value='9']")).to_be_checked()
    assert server.query(
        "SELECT COUNT(*) FROM answers a JOIN responses r ON r.id = a.response_id"
        " JOIN assessments s ON s.id = r.assessment_id JOIN participants p"
        " ON p.id = s.participant_id WHERE p.study_code = ?",
        (code,),
    ) == [(0,)]
    start(page, link)
    tap_and_wait(page, page.locator("li.task", has_text="Smerter i korsryggen").locator("a"))
    # /a/nrs/1 opens, finds the kept answers and sends them with this session's token.
    page.wait_for_url(re.compile(r"/a/nrs/2(\?.*)?$"), timeout=RESEND_SECONDS * 1000)
    _assert_stored_once(server, code, "nrs_current", 9, 1)


def test_answer_changed_while_offline_is_the_one_saved(server, context, page):
    code = "BTB-1016"
    start(page, server.link(code))
    open_questionnaire(page, server.url, "nrs", 2)
    _choose_scale(page, 6)
    context.set_offline(True)
    page.get_by_role("button", name="Neste", exact=True).click()
    _assert_offline_notice(page, 6)
    _choose_scale(page, 7)  # the participant changes their mind, then taps «Neste» again
    page.get_by_role("button", name="Neste", exact=True).click()
    context.set_offline(False)
    page.wait_for_url(re.compile(r"/a/nrs/3(\?.*)?$"), timeout=RESEND_SECONDS * 1000)
    response_id = _response_id(server, code, "nrs")
    stored = server.query(
        "SELECT value FROM answers WHERE response_id = ? AND item = 'nrs_worst'"
        " ORDER BY id DESC LIMIT 1",
        (response_id,),
    )
    assert stored == [("7",)], f"on screen 7 when «Neste» was tapped; stored {stored}"


# --- The error summary ------------------------------------------------------------------------


def test_error_summary_is_focused_and_links_to_the_question(server, page):
    start(page, server.link("BTB-1061"))
    open_questionnaire(page, server.url, "odi", 1)
    page.get_by_role("button", name="Neste", exact=True).click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary.get_by_role("heading")).to_have_text("Noe må rettes")
    assert page.title().startswith("Feil:"), page.title()
    assert_lang(page)
    expect(page).to_have_url(re.compile(r"/a/odi/1(\?.*)?$"))
    message = page.locator(".field-error .error-message")
    expect(message).to_contain_text("Du må svare på dette spørsmålet.")
    fieldset = page.locator("fieldset[aria-describedby]")
    assert message.get_attribute("id") in fieldset.get_attribute("aria-describedby").split()
    summary.get_by_role("link").first.click()
    first = page.locator("form.page input[type=radio]").first
    expect(first).to_be_focused()
    answer_page(page, server.app, how="first")
    tap_next(page)
    expect(page).to_have_url(re.compile(r"/a/odi/2(\?.*)?$"))
    expect(page.locator(".notice-saved")).to_have_text("Lagret")


def test_offline_page_is_in_the_participants_language(server, context, page):
    start_link = server.link("BTB-1052", language="en")
    page.goto(start_link)
    assert_lang(page, "en")
    tap_and_wait(page, page.get_by_role("button", name="Start"))
    assert_lang(page, "en")
    page.evaluate("() => navigator.serviceWorker.ready")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    context.set_offline(True)
    try:
        page.goto(f"{server.url}/a/odi/1")
        heading = page.get_by_role("heading", level=1).inner_text()
        lang = page.locator("html").get_attribute("lang")
    finally:
        context.set_offline(False)
    assert (lang, heading) == ("en", "You are offline")
