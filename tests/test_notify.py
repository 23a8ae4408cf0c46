"""Invitations and reminders over a real local SMTP server and a local SMS gateway."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sqlite3
import threading
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from pro_app.domain.reminders import due_step, in_quiet_hours

from .factories import enrol, local_today, make_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@pytest.fixture
def gateway():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Authorization"], json.loads(body)))
            status = 503 if b"fail" in body else 200
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/send", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def app(tmp_path, smtp, gateway):
    port, _ = smtp
    url, _ = gateway
    app = make_app(
        tmp_path / "n.sqlite",
        WTF_CSRF_ENABLED=False,
        STAFF_TOTP=False,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        SMTP_STARTTLS=False,
        MAIL_FROM="studie@example.org",
        SMS_BACKEND="http",
        SMS_URL=url,
        SMS_TOKEN="secret-token",
        BASE_URL="https://pro.example.org",
    )
    enrol(app, "BTB-0001", email="kari@example.org", phone="+47 912 34 567", language="nb")
    enrol(app, "BTB-0002", email="ola@example.org", language="en")
    return app


def coordinator(app):
    from pro_app.catalog import catalog_for
    from pro_app.database import get_db
    from pro_app.staff import accounts
    from pro_app.storage.contacts import cipher_for

    with app.app_context():
        db = get_db()
        accounts.add(
            db,
            catalog_for(app).study,
            cipher_for(app.config),
            email="c@example.org",
            role="coordinator",
            sites=("OUS",),
        )
        accounts.set_password(
            db, accounts.by_email(db, "c@example.org"), "a long passphrase", actor="test"
        )
    client = app.test_client()
    client.post("/staff/login", data={"email": "c@example.org", "password": "a long passphrase"})
    return client


def test_invite_by_email_reaches_the_smtp_server_and_opens(app, smtp):
    _, inbox = smtp
    client = coordinator(app)
    reply = client.post("/staff/participants/BTB-0001/baseline/send", data={"channel": "email"})
    assert reply.status_code == 302
    ((recipients, message),) = inbox.messages
    assert recipients == ["kari@example.org"]
    assert message["Subject"] == "Du har et nytt skjema fra studien"
    body = message.get_payload(decode=True).decode()
    link = next(w for w in body.split() if w.startswith("https://pro.example.org/i/"))
    for word in ("infliximab", "placebo", "Modic", "ODI", "HSCL", "rygg"):
        assert word.lower() not in body.lower(), word
    assert "Svar senest" in body
    page = app.test_client().get(link.replace("https://pro.example.org", ""))
    assert page.status_code == 200 and "Start" in page.get_data(as_text=True)
    flashed = client.get("/staff/participants/BTB-0001").get_data(as_text=True)
    assert "Sendt med e-post." in flashed or "Sent by e-mail." in flashed


def test_invite_in_english_for_an_english_participant(app, smtp):
    _, inbox = smtp
    from pro_app.catalog import catalog_for
    from pro_app.database import get_db
    from pro_app.notify.send import deliver
    from pro_app.services import assessments, participants
    from pro_app.storage.contacts import cipher_for

    with app.app_context():
        db = get_db()
        person = participants.by_code(db, "BTB-0002")
        row = assessments.for_participant(db, person["id"])[0]
        result = deliver(
            db,
            app.config,
            catalog_for(app).study,
            cipher_for(app.config),
            participant=person,
            assessment=row,
            channels=("email", "sms"),
            actor="test",
            role="admin",
        )
    assert result == {"email": None, "sms": "no contact details for this channel"}
    assert inbox.messages[0][1]["Subject"] == "You have a new questionnaire from the study"


def test_sms_through_the_http_gateway(app, gateway):
    _, received = gateway
    client = coordinator(app)
    client.post("/staff/participants/BTB-0001/screening/send", data={"channel": "sms"})
    ((auth, body),) = received
    assert auth == "Bearer secret-token" and body["to"] == "+4791234567"
    assert body["message"].startswith("Du har et nytt skjema fra studien. Svar senest ")
    assert "https://pro.example.org/i/" in body["message"]


def test_failures_are_shown_and_recorded(app, tmp_path):
    app.config["SMTP_HOST"] = "127.0.0.1"
    app.config["SMTP_PORT"] = free_port()  # nothing listens there
    client = coordinator(app)
    client.post("/staff/participants/BTB-0001/baseline/send", data={"channel": "email"})
    page = client.get("/staff/participants/BTB-0001").get_data(as_text=True)
    assert "Ikke sendt" in page or "Not sent" in page
    conn = sqlite3.connect(app.config["DATABASE"])
    assert conn.execute("SELECT channel, status FROM deliveries").fetchall() == [
        ("email", "failed")
    ]
    assert (
        conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'invite.email'").fetchone()[0] == 1
    )


# --- Reminders ----------------------------------------------------------------------------------


def oslo(app, day: dt.date, hour: int) -> str:
    return f"{day.isoformat()}T{hour:02d}:00"


def run_reminders(app, now: str):
    return app.test_cli_runner().invoke(args=["reminders", "send", "--now", now])


def test_reminders_follow_the_steps_once_each(app, smtp, gateway):
    _, inbox = smtp
    today = local_today(app)
    # Baseline opened 7 days before day 0 (day0 = today + 3): it opened on today - 4.
    first = today - dt.timedelta(days=4)
    before = run_reminders(app, oslo(app, first + dt.timedelta(days=1), 12))
    assert "baseline reminder" not in before.output
    step1 = run_reminders(app, oslo(app, first + dt.timedelta(days=2), 12))
    assert "BTB-0001 baseline reminder 1 email: sent" in step1.output
    assert "BTB-0001 baseline reminder 1 sms: sent" in step1.output
    again = run_reminders(app, oslo(app, first + dt.timedelta(days=2), 13))
    assert "baseline reminder" not in again.output  # never twice for the same step
    step2 = run_reminders(app, oslo(app, first + dt.timedelta(days=5), 10))
    assert "BTB-0001 baseline reminder 2 email: sent" in step2.output
    third = run_reminders(app, oslo(app, first + dt.timedelta(days=6), 10))
    assert "baseline reminder" not in third.output  # at most two
    subjects = {str(make_header(decode_header(m["Subject"]))) for _, m in inbox.messages}
    assert subjects == {
        "Påminnelse om skjema fra studien",
        "Reminder of a questionnaire from the study",
    }
    conn = sqlite3.connect(app.config["DATABASE"])
    steps = conn.execute(
        "SELECT d.step, d.channel FROM deliveries d JOIN assessments a ON a.id = d.assessment_id"
        " JOIN participants p ON p.id = a.participant_id WHERE p.study_code = 'BTB-0001'"
        " AND a.timepoint = 'baseline' ORDER BY d.id"
    ).fetchall()
    assert steps == [(1, "email"), (1, "sms"), (2, "email"), (2, "sms")]


def test_no_reminders_at_night_outside_the_window_or_after_withdrawal(app, smtp):
    _, inbox = smtp
    today = local_today(app)
    first = today - dt.timedelta(days=4)
    night = run_reminders(app, oslo(app, first + dt.timedelta(days=2), 22))
    assert "Sent 0 reminder(s)" in night.output
    early = run_reminders(app, oslo(app, first + dt.timedelta(days=2), 7))
    assert "Sent 0 reminder(s)" in early.output
    assert inbox.messages == []
    closed = run_reminders(app, oslo(app, today + dt.timedelta(days=20), 12))
    assert "baseline" not in closed.output
    coordinator(app).post("/staff/participants/BTB-0001/withdraw", data={"reason": "Wish"})
    after = run_reminders(app, oslo(app, first + dt.timedelta(days=2), 12))
    assert "BTB-0001" not in after.output


def test_due_step_rules():
    zone = __import__("zoneinfo").ZoneInfo("Europe/Oslo")
    first = dt.date(2026, 3, 26)
    closes = dt.datetime(2026, 4, 2, 22, tzinfo=dt.UTC)
    quiet = (dt.time(21), dt.time(9))

    def at(day, hour):
        return dt.datetime(2026, 3, day, hour, tzinfo=zone).astimezone(dt.UTC)

    assert due_step((2, 5), first, closes, at(27, 12), zone, *quiet, set()) is None
    assert due_step((2, 5), first, closes, at(28, 12), zone, *quiet, set()) == 1
    assert due_step((2, 5), first, closes, at(31, 12), zone, *quiet, set()) == 2  # latest only
    assert due_step((2, 5), first, closes, at(31, 12), zone, *quiet, {2}) is None
    assert due_step((2, 5), first, closes, at(28, 12), zone, *quiet, {1}) is None
    assert due_step((2, 5), first, closes, at(28, 8), zone, *quiet, set()) is None
    assert in_quiet_hours(dt.time(23), *quiet) and not in_quiet_hours(dt.time(12), *quiet)
    assert in_quiet_hours(dt.time(12, 30), dt.time(12), dt.time(13))


def test_withdrawal_revokes_links_and_is_audited(app):
    client = coordinator(app)
    from .factories import link_token

    token = link_token(app, "BTB-0001", "baseline")
    refused = client.post("/staff/participants/BTB-0001/withdraw", data={"reason": ""})
    assert refused.status_code == 302
    client.post("/staff/participants/BTB-0001/withdraw", data={"reason": "Moved abroad"})
    assert app.test_client().get(f"/i/{token}").status_code == 404
    conn = sqlite3.connect(app.config["DATABASE"])
    assert conn.execute(
        "SELECT status FROM participants WHERE study_code = 'BTB-0001'"
    ).fetchone() == ("withdrawn",)
    assert conn.execute(
        "SELECT reason FROM audit WHERE action = 'participant.withdraw'"
    ).fetchone() == ("Moved abroad",)
