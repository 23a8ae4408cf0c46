"""Staff accounts, sign-in with TOTP, throttling, sessions, and the role-and-site matrix."""

from __future__ import annotations

import re
import sqlite3

import pyotp
import pytest

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.staff import accounts
from pro_app.staff.access import ROUTE_ROLES
from pro_app.storage.contacts import cipher_for

from .factories import enrol, make_app

PASSWORD = "correct horse battery staple"
AUTH_ENDPOINTS = {"staff.login", "staff.code", "staff.password", "staff.logout"}


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "s.sqlite", WTF_CSRF_ENABLED=False, STAFF_TOTP=True)
    enrol(app, "BTB-0001", site="OUS", email="kari@example.org")
    enrol(app, "BTB-0002", site="HUS")
    return app


def account(app, email, role, sites=(), *, ready=True):
    """Create an account; with ready, its password is already changed. Return the secret."""
    with app.app_context():
        db = get_db()
        password, secret = accounts.add(
            db, catalog_for(app).study, cipher_for(app.config), email=email, role=role, sites=sites
        )
        if ready:
            accounts.set_password(db, accounts.by_email(db, email), PASSWORD, actor="test")
    return password if not ready else PASSWORD, secret


def sign_in(app, email, password, secret):
    client = app.test_client()
    first = client.post("/staff/login", data={"email": email, "password": password})
    assert first.status_code == 302, first.get_data(as_text=True)[:300]
    second = client.post("/staff/login/code", data={"code": pyotp.TOTP(secret).now()})
    assert second.status_code == 302, second.get_data(as_text=True)[:300]
    return client


def test_cli_staff_add_disable_reset(app):
    runner = app.test_cli_runner()
    added = runner.invoke(
        args=["staff", "add", "ola@example.org", "--role", "coordinator", "--site", "OUS"]
    )
    assert added.exit_code == 0, added.output
    assert "One-time password: " in added.output and "otpauth://totp/" in added.output
    wrong = runner.invoke(args=["staff", "add", "x@example.org", "--role", "coordinator"])
    assert wrong.exit_code == 1 and "give --site" in wrong.output
    assert "Disabled" in runner.invoke(args=["staff", "disable", "ola@example.org"]).output
    reset = runner.invoke(args=["staff", "reset-password", "ola@example.org", "--new-totp"])
    assert "One-time password for ola@example.org" in reset.output and "otpauth" in reset.output


def test_password_is_hashed_with_argon2id(app):
    password, _ = account(app, "a@example.org", "admin", ready=False)
    row = (
        sqlite3.connect(app.config["DATABASE"])
        .execute("SELECT password_hash FROM staff")
        .fetchone()[0]
    )
    assert row.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and password not in row


def test_unknown_user_and_wrong_password_answer_alike(app):
    account(app, "a@example.org", "admin")
    client = app.test_client()
    wrong = client.post("/staff/login", data={"email": "a@example.org", "password": "nope"})
    unknown = client.post("/staff/login", data={"email": "b@example.org", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401

    def without_token(reply):  # the CSRF token is signed with the time: it may differ
        return re.sub(r'name="csrf_token" value="[^"]*"', "", reply.get_data(as_text=True))

    assert without_token(wrong) == without_token(unknown)


def test_first_sign_in_sets_up_totp_and_changes_the_password(app):
    password, secret = account(app, "new@example.org", "coordinator", ("OUS",), ready=False)
    client = app.test_client()
    first = client.post("/staff/login", data={"email": "new@example.org", "password": password})
    assert first.headers["Location"].startswith("/staff/login/code")
    setup = client.get("/staff/login/code").get_data(as_text=True)
    assert "data:image/svg+xml" in setup and secret in setup
    assert client.get("/staff/").headers["Location"] == "/staff/login/code"
    client.post("/staff/login/code", data={"code": pyotp.TOTP(secret).now()})
    assert client.get("/staff/").headers["Location"] == "/staff/password"
    weak = client.post("/staff/password", data={"password": "password1", "repeat": "password1"})
    assert weak.status_code == 400 and "for vanlig" in weak.get_data(as_text=True)
    client.post("/staff/password", data={"password": PASSWORD, "repeat": PASSWORD})
    assert client.get("/staff/").status_code == 200


def test_a_totp_code_works_once(app):
    _, secret = account(app, "a@example.org", "admin")
    code = pyotp.TOTP(secret).now()
    client = app.test_client()
    client.post("/staff/login", data={"email": "a@example.org", "password": PASSWORD})
    assert client.post("/staff/login/code", data={"code": code}).status_code == 302
    other = app.test_client()
    other.post("/staff/login", data={"email": "a@example.org", "password": PASSWORD})
    assert other.post("/staff/login/code", data={"code": code}).status_code == 401


def test_throttling_after_ten_failures(app):
    account(app, "a@example.org", "admin")
    client = app.test_client()
    for _ in range(10):
        client.post("/staff/login", data={"email": "a@example.org", "password": "wrong"})
    blocked = client.post("/staff/login", data={"email": "a@example.org", "password": PASSWORD})
    assert blocked.status_code == 401
    assert "Wait 15 minutes" in blocked.get_data(as_text=True) or "Vent 15 minutter" in (
        blocked.get_data(as_text=True)
    )


def test_session_id_changes_at_login_and_logout_ends_it(app):
    _, secret = account(app, "a@example.org", "admin")
    client = app.test_client()
    client.get("/staff/login")
    client.post("/staff/login", data={"email": "a@example.org", "password": PASSWORD})
    client.post("/staff/login/code", data={"code": pyotp.TOTP(secret).now()})
    cookie = client.get_cookie("session").value
    assert client.get("/staff/").status_code == 200
    client.post("/staff/logout")
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    assert replay.get("/staff/").status_code == 302  # the server ended the session


def test_disabling_ends_sessions_at_once(app):
    _, secret = account(app, "c@example.org", "coordinator", ("OUS",))
    client = sign_in(app, "c@example.org", PASSWORD, secret)
    assert client.get("/staff/").status_code == 200
    app.test_cli_runner().invoke(args=["staff", "disable", "c@example.org"])
    assert client.get("/staff/").status_code == 302


ROLE_SITES = {"admin": (), "coordinator": ("OUS",), "investigator": ("OUS",), "data_manager": ()}


@pytest.fixture
def clients(app):
    result = {}
    for role, sites in ROLE_SITES.items():
        email = f"{role}@example.org"
        _, secret = account(app, email, role, sites)
        result[role] = sign_in(app, email, PASSWORD, secret)
    return result


def _requests(app):
    """Every staff route, with example arguments, as (method, path, endpoint)."""
    examples = {
        "code": "BTB-0001",
        "timepoint": "screening",
        "alert_id": "1",
        "job_id": "x",
        "token_id": "1",
    }
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("staff.") or rule.endpoint in AUTH_ENDPOINTS:
            continue
        path = re.sub(
            r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: examples.get(m.group(1), "1"), rule.rule
        )
        method = "GET" if "GET" in rule.methods else "POST"
        found.append((method, path, rule.endpoint))
    return found


def test_every_staff_route_is_classified(app):
    endpoints = {endpoint for _, _, endpoint in _requests(app)}
    assert endpoints, "no staff routes found"
    assert endpoints <= set(ROUTE_ROLES), endpoints - set(ROUTE_ROLES)


def test_role_matrix(app, clients):
    for method, path, endpoint in _requests(app):
        for role, client in clients.items():
            reply = client.open(path, method=method)
            if role in ROUTE_ROLES[endpoint]:
                # Allowed: anything but a refusal or a crash (a POST without its fields may
                # get 400, an unknown alert 404).
                assert reply.status_code not in (401, 403), (role, method, path)
                assert reply.status_code < 500, (role, method, path, reply.status_code)
            else:
                assert reply.status_code == 403, (role, method, path, reply.status_code)
        anonymous = app.test_client().open(path, method=method)
        assert anonymous.status_code == 302, (method, path)
        assert anonymous.headers["Location"].startswith("/staff/login")


def test_site_staff_see_only_their_sites(app, clients):
    coordinator = clients["coordinator"]
    assert coordinator.get("/staff/participants/BTB-0001").status_code == 200
    assert coordinator.get("/staff/participants/BTB-0002").status_code == 404
    page = coordinator.get("/staff/").get_data(as_text=True)
    assert "BTB-0001" in page and "BTB-0002" not in page
    assert "BTB-0002" in clients["admin"].get("/staff/").get_data(as_text=True)


def test_data_managers_never_see_contact_details(clients):
    coordinator_page = clients["coordinator"].get("/staff/participants/BTB-0001")
    assert "kari@example.org" in coordinator_page.get_data(as_text=True)
    manager_page = clients["data_manager"].get("/staff/participants/BTB-0001")
    assert manager_page.status_code == 200
    assert "kari@example.org" not in manager_page.get_data(as_text=True)


def test_enrol_and_make_a_link_from_the_pages(app, clients):
    client = clients["coordinator"]
    bad = client.post(
        "/staff/participants/new",
        data={"code": "BTB-12", "site": "OUS", "language": "nb", "enrolled": "2026-11-20"},
    )
    assert bad.status_code == 400 and "passer ikke med mønsteret" in bad.get_data(as_text=True)
    other_site = client.post(
        "/staff/participants/new",
        data={"code": "BTB-0100", "site": "HUS", "language": "nb", "enrolled": "2026-11-20"},
    )
    assert other_site.status_code == 400
    good = client.post(
        "/staff/participants/new",
        data={
            "code": "BTB-0100",
            "site": "OUS",
            "language": "en",
            "enrolled": "2026-11-20",
            "day0": "",
            "email": "per@example.org",
            "phone": "+47 912 34 567",
        },
    )
    assert good.headers["Location"] == "/staff/participants/BTB-0100"
    page = client.post("/staff/participants/BTB-0100/screening/link").get_data(as_text=True)
    assert re.search(r"/i/[A-Za-z0-9_-]{43}", page) and "data:image/svg+xml" in page
    audit = (
        sqlite3.connect(app.config["DATABASE"])
        .execute("SELECT actor, action FROM audit WHERE entity_id LIKE 'BTB-0100%'")
        .fetchall()
    )
    assert ("coordinator@example.org", "participant.enrol") in audit
    assert ("coordinator@example.org", "invite.issue") in audit


def test_set_and_correct_day0_from_the_page(app, clients):
    client = clients["coordinator"]
    enrol(app, "BTB-0003", site="OUS", enrolled=-5, day0=None)
    client.post("/staff/participants/BTB-0003/day0", data={"day0": "2030-01-10"})
    conn = sqlite3.connect(app.config["DATABASE"])
    day154 = (
        "SELECT a.target_day FROM assessments a JOIN participants p ON p.id = a.participant_id"
        " WHERE p.study_code = 'BTB-0003' AND a.timepoint = 'day154'"
    )
    assert conn.execute(day154).fetchone() == ("2030-06-13",)
    no_reason = client.post("/staff/participants/BTB-0003/day0", data={"day0": "2030-01-17"})
    assert no_reason.status_code == 302
    assert conn.execute(day154).fetchone() == ("2030-06-13",)
    client.post(
        "/staff/participants/BTB-0003/day0", data={"day0": "2030-01-17", "reason": "Infusion moved"}
    )
    assert conn.execute(day154).fetchone() == ("2030-06-20",)
    assert conn.execute(
        "SELECT old_value, new_value, reason FROM audit WHERE action ="
        " 'participant.day0' ORDER BY id DESC LIMIT 1"
    ).fetchone() == ("2030-01-10", "2030-01-17", "Infusion moved")


def test_day0_cannot_change_once_a_later_timepoint_has_answers(app, clients):
    from .factories import link_token

    token = link_token(app, "BTB-0001", "baseline")
    participant = app.test_client()
    participant.post(f"/i/{token}")
    participant.post("/a/odi/1", data={"odi1": "2", "action": "next"})
    client = clients["coordinator"]
    client.post("/staff/participants/BTB-0001/day0", data={"day0": "2030-01-17", "reason": "x"})
    page = client.get("/staff/participants/BTB-0001").get_data(as_text=True)
    assert "Dag 0 kan ikke endres lenger fordi baseline allerede har svar." in page
    conn = sqlite3.connect(app.config["DATABASE"])
    assert (
        conn.execute("SELECT day0 FROM participants WHERE study_code = 'BTB-0001'").fetchone()[0]
        != "2030-01-17"
    )


def test_data_manager_downloads_an_export_from_the_page(app, clients):
    from .test_export_jobs import finished

    manager = clients["data_manager"]
    page = manager.get("/staff/exports")
    assert page.status_code == 200 and "csv-wide" in page.get_data(as_text=True)
    started = manager.post("/staff/exports", data={"format": "codebook", "delimiter": ";"})
    assert started.status_code == 303 and started.headers["Location"].startswith("/staff/exports/")
    job_page = finished(manager, started.headers["Location"])
    download = re.search(r'href="(/staff/exports/[^"]+/download)"', job_page).group(1)
    reply = manager.get(download)
    assert reply.status_code == 200
    assert reply.headers["Content-Disposition"].startswith("attachment; filename=backtobasic-")
    body = reply.get_data()
    reply.close()
    assert body.startswith(b"\xef\xbb\xbfname;questionnaire;")
    import hashlib

    assert hashlib.sha256(body).hexdigest() == reply.headers["X-Content-SHA256"]
    bad = manager.post("/staff/exports", data={"format": "csv-wide", "site": "XYZ"})
    assert bad.status_code == 400 and "XYZ" in bad.get_data(as_text=True)
    assert (
        clients["coordinator"].post("/staff/exports", data={"format": "csv-wide"}).status_code
        == 403
    )
    audit = (
        sqlite3.connect(app.config["DATABASE"])
        .execute("SELECT actor, role, action FROM audit WHERE entity = 'export' ORDER BY id")
        .fetchall()
    )
    assert audit == [
        ("data_manager@example.org", "data_manager", "export"),
        ("data_manager@example.org", "data_manager", "export.download"),
    ]
