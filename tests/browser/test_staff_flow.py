"""A coordinator's first day in a real desktop browser, against gunicorn and a real SMTP server.

One module-scoped walk: first sign-in (one-time password, TOTP set-up with QR code and key,
password change refused for a common password, then accepted), enrolment (once refused, then
accepted), day 0, an invitation sent by e-mail to a local aiosmtpd server, the participant opening
that e-mail's link on a phone, «åpnet» on the coordinator's page, a new link, the alerts page,
sign-out, and a coordinator at another site refused the participant (404). axe-core runs on every
staff page met, no rule disabled. The tests below read what the walk saw, so one failing check
does not hide the others.

The server here is not conftest's: it runs without PRO_DEMO, with the second factor on, a real
contact key and SMTP settings, so it is started in this module (same approach as conftest).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header

import pyotp
import pytest
from aiosmtpd.controller import Controller
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.staff import accounts
from pro_app.storage.contacts import cipher_for, new_key
from tests.factories import local_today, make_app

from .conftest import PHONE, SCREENSHOTS, Server, gunicorn
from .helpers import OVERVIEW_URL, assert_lang, report, start

pytestmark = pytest.mark.slow

DESKTOP = {"viewport": {"width": 1280, "height": 800}, "locale": "nb-NO"}
CODE = "BTB-0501"
EMAIL = "kari@example.org"
COORDINATOR = "koordinator@example.org"
OTHER = "bergen@example.org"
OTHER_PASSWORD = "fjord regn paraply sykkel"
GOOD_PASSWORD = "blå hest batteri stift"
COMMON_PASSWORD = "password123"
SUBJECT = "Du har et nytt skjema fra studien"
BASELINE = ("odi", "nrs", "rmdq", "hscl25", "fabq", "shc", "background")
STAFF_PAGES = (
    "login",
    "code-setup",
    "password-error",
    "overview",
    "enrol",
    "enrol-error",
    "participant",
    "link",
    "alerts",
)
# What an e-mail must never say (LANGUAGE.md): diagnosis, drug, questionnaire, study arm.
FORBIDDEN = (
    r"rygg",
    r"smerte",
    r"modic",
    r"infliximab",
    r"remicade",
    r"placebo",
    r"infusjon",
    r"legemiddel",
    r"medisin",
    r"behandling",
    r"\barm\b",
    r"\bodi\b",
    r"oswestry",
    r"\bnrs\b",
    r"\brmdq\b",
    r"roland",
    r"hscl",
    r"hopkins",
    r"\bfabq\b",
    r"\bshc\b",
    r"backtobasic",
    r"back pain",
)
# Pages whose axe violations are known markup bugs: {page: reason naming the rule ids}; each
# becomes a strict xfail. Empty: no staff page had a violation when this was written.
AXE_KNOWN: dict[str, str] = {}


# --- Servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.messages: list[tuple[list[str], object]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@dataclass
class StaffServer(Server):
    inbox: Inbox = None
    accounts: dict = field(default_factory=dict)


def _add_account(app, cipher, email: str, sites: tuple[str, ...]) -> tuple[str, str]:
    with app.app_context():
        return accounts.add(
            get_db(),
            catalog_for(app).study,
            cipher,
            email=email,
            role="coordinator",
            sites=sites,
            actor="test",
        )


@pytest.fixture(scope="module")
def staff_server(tmp_path_factory):
    """aiosmtpd on a free port, and gunicorn -w 2 with TOTP on, SMTP set and a contact key."""
    folder = tmp_path_factory.mktemp("staff")
    db_path = folder / "pro.sqlite"
    secret = "staff-flow-" + secrets.token_hex(24)
    contact_key = new_key()
    app = make_app(db_path, SECRET_KEY=secret, CONTACT_KEY=contact_key)
    cipher = cipher_for({"CONTACT_KEY": contact_key, "SECRET_KEY": secret})
    first = _add_account(app, cipher, COORDINATOR, ("OUS",))
    other = _add_account(app, cipher, OTHER, ("HUS",))
    with app.app_context():
        db = get_db()
        accounts.set_password(db, accounts.by_email(db, OTHER), OTHER_PASSWORD, actor="test")

    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    settings = {
        "PRO_DATABASE": str(db_path),
        "PRO_SECRET_KEY": secret,
        "PRO_CONTACT_KEY": contact_key,
        "PRO_STAFF_TOTP": "true",
        "PRO_SMTP_HOST": "127.0.0.1",
        "PRO_SMTP_PORT": str(smtp.port),
        "PRO_SMTP_STARTTLS": "false",
        "PRO_MAIL_FROM": "studie@example.org",
    }
    try:
        with gunicorn(folder, settings) as (url, log_path):
            yield StaffServer(
                url=url,
                db_path=db_path,
                app=app,
                log_path=log_path,
                inbox=inbox,
                accounts={COORDINATOR: first, OTHER: (OTHER_PASSWORD, other[1])},
            )
    finally:
        smtp.stop()


# --- The walk ---------------------------------------------------------------------------------


@dataclass
class Walk:
    axe: Axe = field(default_factory=Axe)
    results: dict = field(default_factory=dict)
    seen: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)

    def check(self, page, kind: str, heading: str) -> None:
        assert kind in STAFF_PAGES, kind
        page.wait_for_load_state("load")
        assert_lang(page)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        outcome = self.axe.run(page)
        self.results[kind] = {"url": page.url, "violations": outcome.response["violations"]}
        if os.environ.get("PRO_SCREENSHOTS"):
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"staff-{kind}.png"), full_page=True)


def submit(page, name: str, *, status: int | None = None) -> None:
    """Tap a submit button and wait for the page it leads to (optionally its HTTP status)."""
    button = page.get_by_role("button", name=name, exact=True)
    with page.expect_navigation() as navigation:
        button.click()
    page.wait_for_load_state("load")
    if status is not None:
        assert navigation.value.status == status, (page.url, navigation.value.status)


def schedule_row(page, timepoint: str):
    return page.locator("table.schedule tbody tr").filter(
        has=page.locator("th", has_text=re.compile(rf"^{timepoint}$"))
    )


def sign_in(page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/staff/login")
    page.get_by_label("E-postadresse").fill(email)
    page.get_by_label("Passord", exact=True).fill(password)
    submit(page, "Logg inn")
    expect(page).to_have_url(re.compile(r"/staff/login/code(\?.*)?$"))


@pytest.fixture(scope="module")
def walk(staff_server, browser):
    found = Walk()
    context = browser.new_context(**DESKTOP)
    context.set_default_timeout(10_000)
    context.set_default_navigation_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda error: found.errors.append(f"{page.url}: {error}"))
    try:
        _walk(found, staff_server, page, browser)
    except Exception:
        print("gunicorn log:\n" + staff_server.log_tail())
        raise
    finally:
        context.close()
    return found


def _walk(found: Walk, server: StaffServer, page, browser) -> None:
    seen = found.seen
    check = found.check
    url = server.url
    one_time, secret = server.accounts[COORDINATOR]
    today = local_today(server.app)

    # Sign in: e-mail and one-time password.
    page.goto(f"{url}/staff/")
    expect(page).to_have_url(re.compile(r"/staff/login\?next=(/|%2F)staff(/|%2F)$"))
    check(page, "login", "Innlogging for studiepersonell")
    page.get_by_label("E-postadresse").fill(COORDINATOR)
    page.get_by_label("Passord", exact=True).fill(one_time)
    submit(page, "Logg inn")

    # The code page shows the QR code and the key the first time.
    expect(page).to_have_url(re.compile(r"/staff/login/code(\?.*)?$"))
    qr = page.get_by_role("img", name="QR-kode for autentiseringsappen")
    expect(qr).to_be_visible()
    seen["qr_src"] = qr.get_attribute("src")
    seen["key_shown"] = page.locator("code.secret").inner_text().strip()
    check(page, "code-setup", "Kode fra autentiseringsappen")
    page.get_by_label("Den sekssifrede koden appen viser nå").fill(pyotp.TOTP(secret).now())
    submit(page, "Fortsett")

    # The one-time password must be changed: a common one is refused first.
    expect(page).to_have_url(re.compile(r"/staff/password$"))
    seen["password_url"] = page.url
    page.get_by_label("Nytt passord").fill(COMMON_PASSWORD)
    page.get_by_label("Det samme passordet en gang til").fill(COMMON_PASSWORD)
    submit(page, "Lagre passordet", status=400)
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    seen["password_error"] = summary.inner_text()
    seen["password_error_url"] = page.url
    check(page, "password-error", "Velg et nytt passord")
    page.get_by_label("Nytt passord").fill(GOOD_PASSWORD)
    page.get_by_label("Det samme passordet en gang til").fill(GOOD_PASSWORD)
    submit(page, "Lagre passordet")

    # The overview.
    expect(page).to_have_url(re.compile(r"/staff/$"))
    seen["overview_url"] = page.url
    check(page, "overview", "Oversikt")

    # «Ny deltaker»: first refused (a study code off the pattern), then enrolled.
    nav = page.get_by_role("navigation", name="Meny for studiepersonell")
    with page.expect_navigation():
        nav.get_by_role("link", name="Ny deltaker").click()
    expect(page).to_have_url(re.compile(r"/staff/participants/new$"))
    check(page, "enrol", "Ny deltaker")
    enrolled = today - dt.timedelta(days=2)
    page.get_by_label("Studiekode").fill("BTB-501")
    page.get_by_label("Inklusjonsdato").fill(enrolled.isoformat())
    submit(page, "Inkluder", status=400)
    expect(page.locator(".error-summary")).to_be_visible()
    seen["enrol_error"] = page.locator(".error-summary").inner_text()
    check(page, "enrol-error", "Ny deltaker")
    page.get_by_label("Studiekode").fill(CODE)
    page.get_by_label("Studiested").select_option("OUS")
    page.get_by_label("Norsk (bokmål)").check()
    page.get_by_label("Inklusjonsdato").fill(enrolled.isoformat())
    page.get_by_label("E-post", exact=True).fill(EMAIL)
    submit(page, "Inkluder")
    expect(page).to_have_url(re.compile(rf"/staff/participants/{CODE}$"))

    # Day 0 = today + 3: baseline opens.
    day0 = today + dt.timedelta(days=3)
    page.get_by_label("Sett dag 0").fill(day0.isoformat())
    submit(page, "Lagre dag 0")
    expect(page.locator(".notice")).to_have_text(f"Dag 0 er {day0.isoformat()}.")
    seen["baseline_state"] = schedule_row(page, "baseline").locator("td.state").inner_text()
    seen["facts"] = page.locator("dl.facts").inner_text()

    # «Send med e-post» in the baseline row.
    before = len(server.inbox.messages)
    submit(page, "Send med e-post baseline")
    expect(page).to_have_url(re.compile(rf"/staff/participants/{CODE}$"))
    seen["sent_notice"] = page.locator(".notice").inner_text()
    seen["messages"] = list(server.inbox.messages[before:])
    seen["history_after_send"] = schedule_row(page, "baseline").locator("td").nth(3).inner_text()
    check(page, "participant", CODE)

    # The participant opens the e-mail's link on a phone and taps «Start».
    link = _link_in(seen["messages"])
    seen["link"] = link
    phone = browser.new_context(**PHONE)
    phone.set_default_timeout(10_000)
    try:
        tab = phone.new_page()
        tab.on("pageerror", lambda error: found.errors.append(f"phone {tab.url}: {error}"))
        start(tab, link)
        expect(tab).to_have_url(OVERVIEW_URL)
        seen["participant_heading"] = tab.get_by_role("heading", level=1).inner_text()
        seen["participant_tasks"] = [
            t.strip() for t in tab.locator("ol.tasks .task-name").all_inner_texts()
        ]
    finally:
        phone.close()

    # Back as the coordinator: the invite history says «åpnet».
    page.reload()
    page.wait_for_load_state("load")
    seen["history_after_open"] = schedule_row(page, "baseline").locator("td").nth(3).inner_text()
    seen["audit_rows"] = [
        row.strip()
        for row in page.get_by_role("region", name="Revisjonslogg")
        .locator("tbody tr")
        .all_inner_texts()
    ]

    # «Ny lenke» for screening (not baseline: that would kill the link the participant holds).
    submit(page, "Ny lenke screening")
    expect(page).to_have_url(re.compile(rf"/staff/participants/{CODE}/screening/link$"))
    seen["new_link"] = page.get_by_label("Lenke", exact=True).input_value()
    expect(page.get_by_role("img", name="QR-kode for invitasjonslenken")).to_be_visible()
    check(page, "link", f"Invitasjonslenke for {CODE}, screening")

    # The safety alerts page (empty).
    with page.expect_navigation():
        nav.get_by_role("link", name="Sikkerhetsvarsler").click()
    expect(page).to_have_url(re.compile(r"/staff/alerts$"))
    seen["alerts_text"] = page.locator("main").inner_text()
    check(page, "alerts", "Sikkerhetsvarsler")

    # Sign out: /staff/ leads to the login page again.
    submit(page, "Logg ut")
    seen["after_logout_url"] = page.url
    page.goto(f"{url}/staff/")
    page.wait_for_load_state("load")
    seen["staff_after_logout_url"] = page.url
    seen["staff_after_logout_heading"] = page.get_by_role("heading", level=1).inner_text()

    # A coordinator at HUS cannot open the OUS participant.
    other = browser.new_context(**DESKTOP)
    other.set_default_timeout(10_000)
    try:
        tab = other.new_page()
        tab.on("pageerror", lambda error: found.errors.append(f"HUS {tab.url}: {error}"))
        _, other_secret = server.accounts[OTHER]
        sign_in(tab, url, OTHER, OTHER_PASSWORD)
        tab.get_by_label("Den sekssifrede koden appen viser nå").fill(
            pyotp.TOTP(other_secret).now()
        )
        submit(tab, "Fortsett")
        expect(tab).to_have_url(re.compile(r"/staff/$"))
        seen["other_overview"] = tab.locator("main").inner_text()
        token = tab.locator("input[name=csrf_token]").first.input_value()
        response = tab.goto(f"{url}/staff/participants/{CODE}")
        seen["other_status"] = response.status
        # Nor send the participant a link (a valid CSRF token, so only the site check answers).
        seen["other_send_status"] = tab.request.post(
            f"{url}/staff/participants/{CODE}/baseline/send",
            form={"csrf_token": token, "channel": "email"},
            max_redirects=0,
        ).status
    finally:
        other.close()
    seen["messages_at_end"] = list(server.inbox.messages)


def _body(message) -> str:
    payload = message.get_payload(decode=True)
    return payload.decode(message.get_content_charset() or "utf-8")


def _link_in(messages) -> str:
    assert messages, "no e-mail reached the SMTP server"
    body = _body(messages[-1][1])
    links = re.findall(r"https?://\S+/i/[A-Za-z0-9_-]+", body)
    assert len(links) == 1, body
    return links[0]


# --- What the walk saw ------------------------------------------------------------------------


def test_walk_had_no_script_errors(walk):
    assert not walk.errors, walk.errors


def test_first_sign_in_shows_the_qr_code_and_the_key(walk, staff_server):
    _, secret = staff_server.accounts[COORDINATOR]
    assert walk.seen["qr_src"].startswith("data:image/svg+xml")
    assert walk.seen["key_shown"] == secret


def test_a_common_password_is_refused_then_a_good_one_accepted(walk):
    assert walk.seen["password_url"].endswith("/staff/password")
    assert "Noe må rettes" in walk.seen["password_error"]
    assert walk.seen["password_error_url"].endswith("/staff/password")
    assert walk.seen["overview_url"].endswith("/staff/")


def test_the_password_error_is_in_norwegian(walk):
    text = walk.seen["password_error"].split("Noe må rettes", 1)[-1]
    assert "passord" in text.lower(), text


def test_the_enrolment_error_is_in_norwegian(walk):
    text = walk.seen["enrol_error"].split("Noe må rettes", 1)[-1]
    assert "studiekode" in text.lower(), text


def test_the_participant_status_is_in_norwegian(walk):
    status = walk.seen["facts"].split("Status\n", 1)[1].split("\n", 1)[0]
    assert status not in ("active", "withdrawn"), status


def test_enrolment_refuses_a_bad_code_then_enrols(walk, staff_server):
    assert "Noe må rettes" in walk.seen["enrol_error"]
    rows = staff_server.query(
        "SELECT site, language, enrolled_on, day0, status FROM participants WHERE study_code = ?",
        (CODE,),
    )
    today = local_today(staff_server.app)
    assert rows == [
        (
            "OUS",
            "nb",
            (today - dt.timedelta(days=2)).isoformat(),
            (today + dt.timedelta(days=3)).isoformat(),
            "active",
        )
    ]
    assert EMAIL in walk.seen["facts"]
    assert walk.seen["baseline_state"] == "åpen"


def test_the_invite_e_mail_is_neutral_and_holds_the_link(walk, staff_server):
    assert walk.seen["sent_notice"] == "Sendt med e-post."
    ((recipients, message),) = walk.seen["messages"]
    assert recipients == [EMAIL]
    assert str(make_header(decode_header(message["Subject"]))) == SUBJECT
    assert message["From"] == "studie@example.org"
    body = _body(message)
    link = walk.seen["link"]
    assert link.startswith(f"{staff_server.url}/i/"), link
    assert link in body
    words = body.replace(link, " ").lower()
    found = [w for w in FORBIDDEN if re.search(w, words)]
    assert not found, f"the e-mail names {found}:\n{body}"
    assert "1 sendt" in walk.seen["history_after_send"]
    assert "åpnet" not in walk.seen["history_after_send"]
    # Nothing else was sent during the whole walk (the HUS coordinator's try included).
    assert len(walk.seen["messages_at_end"]) == 1


def test_the_participant_opens_the_link_and_sees_the_baseline(walk, staff_server):
    assert walk.seen["participant_heading"] == "Skjemaene dine"
    questionnaires = catalog_for(staff_server.app).questionnaires
    titles = [questionnaires[q].title.get("nb") for q in BASELINE]
    assert walk.seen["participant_tasks"] == titles


def test_the_coordinator_sees_the_link_was_opened(walk):
    assert re.search(r"1 sendt,\s*åpnet", walk.seen["history_after_open"]), walk.seen[
        "history_after_open"
    ]


def test_a_new_link_is_shown_once(walk, staff_server):
    assert walk.seen["new_link"].startswith(f"{staff_server.url}/i/")
    assert walk.seen["new_link"] != walk.seen["link"]


def test_the_alerts_page_is_empty(walk):
    assert "Ingen åpne sikkerhetsvarsler." in walk.seen["alerts_text"]


def test_the_participant_page_shows_the_audit_log(walk, staff_server):
    recorded = staff_server.query(
        "SELECT action FROM audit WHERE entity_id = ? OR entity_id LIKE ?", (CODE, f"{CODE}/%")
    )
    actions = {a for (a,) in recorded}
    assert {"participant.enrol", "participant.day0", "invite.email", "invite.open"} <= actions
    shown = "\n".join(walk.seen["audit_rows"])
    for action in ("participant.enrol", "participant.day0", "invite.email", "invite.open"):
        assert action in shown, f"{action} missing from the page's audit log: {shown!r}"


def test_sign_out_ends_the_session(walk):
    assert re.search(r"/staff/login$", walk.seen["after_logout_url"])
    assert re.search(
        r"/staff/login\?next=(/|%2F)staff(/|%2F)$", walk.seen["staff_after_logout_url"]
    )
    assert walk.seen["staff_after_logout_heading"] == "Innlogging for studiepersonell"


def test_a_coordinator_at_another_site_gets_404(walk):
    assert walk.seen["other_status"] == 404
    assert CODE not in walk.seen["other_overview"]
    assert walk.seen["other_send_status"] == 404


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            kind,
            marks=pytest.mark.xfail(strict=True, reason=AXE_KNOWN[kind])
            if kind in AXE_KNOWN
            else (),
        )
        for kind in STAFF_PAGES
    ],
)
def test_axe_finds_no_violations(walk, kind):
    assert kind in walk.results, f"the walk never reached the {kind} page"
    result = walk.results[kind]
    message = f"axe on the {kind} page ({result['url']}):\n" + report(result["violations"])
    assert not result["violations"], message
