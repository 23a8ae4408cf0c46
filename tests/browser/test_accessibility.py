"""axe-core on every kind of participant page, as a participant meets them (no rule disabled).

One walk per module collects the axe results page by page; each page kind is then its own test,
so one page's violations do not hide another's.
"""

from __future__ import annotations

import os
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from .conftest import PHONE, SCREENSHOTS
from .helpers import (
    assert_lang,
    finish_questionnaire,
    open_questionnaire,
    report,
    send_in,
    start,
    tap_and_wait,
    tap_next,
)

pytestmark = pytest.mark.slow

KINDS = (
    "start",
    "overview",
    "single-question",
    "error-summary",
    "saved-notice",
    "review-incomplete",
    "scale",
    "review",
    "overview-progress",
    "multi-item",
    "skip-confirm",
    "skip-declined",
    "english-page",
    "receipt",
    "link-finished",
    "link-upcoming",
    "link-expired",
    "link-invalid",
    "session-ended",
    "offline",
    "landing",
)


class Walk:
    """Runs axe on the current page under a name; keeps the results for the tests below."""

    def __init__(self):
        self.axe = Axe()
        self.results: dict[str, dict] = {}
        self.errors: list[str] = []

    def check(self, page, kind: str, heading: str | None = None) -> None:
        assert kind in KINDS, kind
        page.wait_for_load_state("load")
        if heading is not None:
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        outcome = self.axe.run(page)
        self.results[kind] = {"url": page.url, "violations": outcome.response["violations"]}
        if os.environ.get("PRO_SCREENSHOTS"):
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"axe-{kind}.png"), full_page=True)


@pytest.fixture(scope="module")
def walk(server, browser):
    """Meet every page kind once, with two participants of this module's own."""
    found = Walk()
    context = browser.new_context(**PHONE)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("pageerror", lambda error: found.errors.append(str(error)))
    try:
        _walk(found, server, page, context, browser)
    finally:
        context.close()
    return found


def _walk(found: Walk, server, page, context, browser) -> None:
    check = found.check
    link = server.link("BTB-1101")
    page.goto(link)
    assert_lang(page)
    check(page, "start", "Skjemaer fra studien")
    tap_and_wait(page, page.get_by_role("button", name="Start"))
    expect(page.locator("ol.tasks")).to_be_visible()
    check(page, "overview", "Skjemaene dine")

    open_questionnaire(page, server.url, "odi", 1)
    check(page, "single-question")
    page.get_by_role("button", name="Neste", exact=True).click()
    expect(page.locator(".error-summary")).to_be_visible()
    assert_lang(page)
    check(page, "error-summary")
    page.locator("form.page label").first.click()
    tap_next(page)
    expect(page.locator(".notice-saved")).to_be_visible()
    check(page, "saved-notice")
    page.goto(f"{server.url}/a/odi/review")
    expect(page.locator(".summary-missing").first).to_be_visible()
    check(page, "review-incomplete", "Se over svarene dine")

    open_questionnaire(page, server.url, "nrs", 1)
    expect(page.locator("label.scale-box")).to_have_count(11)
    check(page, "scale")
    finish_questionnaire(page, server.app)
    check(page, "review", "Se over svarene dine")
    send_in(page)
    expect(page.locator(".tag-done")).to_have_count(1)
    check(page, "overview-progress")

    open_questionnaire(page, server.url, "hscl25", 1)
    assert page.locator("form.page fieldset").count() > 1
    check(page, "multi-item")

    open_questionnaire(page, server.url, "background", 1)
    skippable = page.locator("input[name=bg_birth_country]")
    assert skippable.count() > 0, "background page 1 no longer has the skippable item"
    for index in range(page.locator("form.page .field").count()):
        field = page.locator("form.page .field").nth(index)
        if field.locator("input[name=bg_birth_country]").count():
            continue
        if field.locator("input[inputmode=numeric]").count():
            field.locator("input[inputmode=numeric]").fill("45")
        else:
            field.locator(".choice label").first.click()
    page.get_by_role("button", name="Neste", exact=True).click()
    expect(page.locator(".confirm-message")).to_be_visible()
    check(page, "skip-confirm")
    tap_next(page)
    open_questionnaire(page, server.url, "background", 1)
    expect(page.locator("input[name=confirm_skip]")).to_have_count(1)
    check(page, "skip-declined")

    page.goto(f"{server.url}/a/odi/2?lang=en")
    assert_lang(page, "en")
    check(page, "english-page")
    page.goto(f"{server.url}/a?lang=nb")
    assert_lang(page)

    screening = server.link("BTB-1102", timepoint="screening")
    start(page, screening)
    for _ in range(2):
        tap_and_wait(page, page.locator("ol.tasks a.button").first)
        finish_questionnaire(page, server.app, how="first")
        send_in(page)
    expect(page).to_have_url(re.compile(r"/a/receipt(\?.*)?$"))
    check(page, "receipt", "Svarene dine er sendt inn")
    page.goto(screening)
    assert page.locator("form").count() == 0
    check(page, "link-finished", "Du har allerede sendt inn svarene dine")

    page.goto(server.link("BTB-1103", day0=20))
    check(page, "link-upcoming", "Skjemaene er ikke åpne ennå")
    page.goto(server.link("BTB-1104", enrolled=-30, day0=-5))
    check(page, "link-expired", "Lenken er utløpt")
    page.goto(f"{server.url}/i/not-a-real-token")
    check(page, "link-invalid", "Lenken virker ikke")
    page.goto(f"{server.url}/offline")
    check(page, "offline", "Du er uten nett")
    page.goto(f"{server.url}/")
    check(page, "landing")

    stranger = browser.new_context(**PHONE)
    try:
        other = stranger.new_page()
        other.goto(f"{server.url}/a")
        assert_lang(other)
        check(other, "session-ended", "Åpne lenken på nytt")
    finally:
        stranger.close()


def test_walk_met_every_page_kind_without_script_errors(walk):
    assert set(walk.results) == set(KINDS), set(KINDS) - set(walk.results)
    assert not walk.errors, walk.errors


@pytest.mark.parametrize("kind", KINDS)
def test_no_axe_violations(walk, kind):
    if kind not in walk.results:
        pytest.fail(f"the walk did not reach the {kind} page")
    found = walk.results[kind]
    violations = found["violations"]
    assert not violations, f"axe on {kind} ({found['url']}):\n{report(violations)}"
