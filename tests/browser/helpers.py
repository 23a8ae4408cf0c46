"""Tap through participant pages like a person: read the DOM, choose, tap «Neste»."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from pro_app.catalog import catalog_for

PAGE_URL = re.compile(r"/a/(?P<qid>[a-z0-9_]+)/(?P<number>\d+)(\?.*)?$")
REVIEW_URL = re.compile(r"/a/(?P<qid>[a-z0-9_]+)/review(\?.*)?$")
OVERVIEW_URL = re.compile(r"/a(\?.*)?$")
RECEIPT_URL = re.compile(r"/a/receipt(\?.*)?$")
RECEIPT_CODE = re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}$")
WORDS = "Vondt i ryggen etter jobb"
DATE = "2020-01-01"


def assert_lang(page: Page, lang: str = "nb") -> None:
    actual = page.locator("html").get_attribute("lang")
    assert actual == lang, f"<html lang={actual!r}> on {page.url}, expected {lang!r}"


def tap_and_wait(page: Page, locator, timeout: float = 15_000) -> None:
    """Tap a button that leads to another address and wait until that page has loaded."""
    before = page.url
    locator.click()
    page.wait_for_url(lambda url: url != before, timeout=timeout)
    page.wait_for_load_state("load")


def start(page: Page, link: str) -> None:
    """Open an invite link, check the start page, tap «Start»."""
    page.goto(link)
    assert_lang(page)
    expect(page.get_by_role("button", name="Start")).to_be_visible()
    tap_and_wait(page, page.get_by_role("button", name="Start"))
    assert_lang(page)


def fields(page: Page):
    return page.locator("form.page .field")


def _pick(count: int, how: str) -> int:
    return 0 if how == "first" else count // 2


def answer_field(field, how: str, app) -> str:
    """Answer one field as a person would; return a short description of the choice."""
    boxes = field.locator("label.scale-box")
    if boxes.count():
        index = _pick(boxes.count(), how)
        boxes.nth(index).click()
        return f"scale {index}"
    radios = field.locator("input[type=radio]:not([value=not_applicable])")
    if radios.count():
        index = _pick(radios.count(), how)
        value = radios.nth(index).get_attribute("value")
        field.locator(f"label[for='{radios.nth(index).get_attribute('id')}']").click()
        return f"radio {value}"
    checks = field.locator("input[type=checkbox]:not([value=not_applicable])")
    if checks.count():
        box = checks.first
        field.locator(f"label[for='{box.get_attribute('id')}']").click()
        return f"checkbox {box.get_attribute('value')}"
    date = field.locator("input[type=date]")
    if date.count():
        date.fill(DATE)
        return f"date {DATE}"
    number = field.locator("input[inputmode=numeric]")
    if number.count():
        name = number.get_attribute("name")
        item = _item(app, name)
        value = str((item.min + item.max) // 2)
        number.fill(value)
        return f"number {value}"
    text = field.locator("textarea, input[type=text]")
    if text.count():
        text.first.fill(WORDS)
        return "text"
    raise AssertionError(f"no control found in field: {field.inner_html()[:300]}")


def _item(app, item_id: str):
    """The definition of an item (only to know an integer's allowed range)."""
    for definition in catalog_for(app).questionnaires.values():
        for item in definition.items:
            if item.id == item_id:
                return item
    raise KeyError(item_id)


def answer_page(page: Page, app, how: str = "middle") -> list[str]:
    """Answer every field on the page; checks each choice is shown as chosen."""
    chosen = []
    all_fields = fields(page)
    assert all_fields.count() >= 1, f"no questions on {page.url}"
    for index in range(all_fields.count()):
        field = all_fields.nth(index)
        chosen.append(answer_field(field, how, app))
        picked = field.locator("input:checked")
        controls = field.locator("input[type=radio], input[type=checkbox]")
        if controls.count():
            assert picked.count() >= 1, f"the tap did not choose anything on {page.url}"
    return chosen


def tap_next(page: Page, name: str = "Neste") -> None:
    tap_and_wait(page, page.get_by_role("button", name=name, exact=True))


def finish_questionnaire(page: Page, app, how: str = "middle", on_page=None) -> str:
    """From a questionnaire page, answer every page and stop on the review page."""
    while True:
        match = PAGE_URL.search(page.url)
        if not match:
            break
        assert_lang(page)
        if on_page:
            on_page(page, match["qid"], int(match["number"]))
        answer_page(page, app, how)
        tap_next(page)
    match = REVIEW_URL.search(page.url)
    assert match, f"expected the review page, got {page.url}"
    assert_lang(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Se over svarene dine")
    return match["qid"]


def send_in(page: Page) -> None:
    """Tap «Send inn» on the review page."""
    tap_and_wait(page, page.get_by_role("button", name="Send inn"))
    assert_lang(page)


def open_questionnaire(page: Page, base_url: str, qid: str, number: int | None = None) -> None:
    page.goto(f"{base_url}/a/{qid}" + (f"/{number}" if number else ""))
    assert_lang(page)


def first_open_task(page: Page):
    """The first «Start»/«Fortsett» button on the overview."""
    return page.locator("ol.tasks a.button").first


def report(violations: list[dict]) -> str:
    """Violations as lines a person can act on: rule, impact, help, element, why."""
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}"
            f" [{violation['helpUrl']}]"
        )
        for node in violation["nodes"]:
            lines.append(f"    at {', '.join(map(str, node['target']))}: {node['html'][:200]}")
            summary = node.get("failureSummary", "").replace("\n", " ")
            if summary:
                lines.append(f"      {summary[:400]}")
    return "\n".join(lines)
