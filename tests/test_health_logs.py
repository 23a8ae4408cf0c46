"""Health probes, structured access logs and request ids on error pages."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess

import pytest
import sqlite_utils

from pro_app import create_app
from pro_app.logs import LogFormatError
from pro_app.storage.schema import migrations

from .factories import enrol, link_token, make_app
from .test_staff import PASSWORD, account, sign_in

EMAIL = "kari.nordmann@example.org"
PHONE = "+4791234567"


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path / "h.sqlite", WTF_CSRF_ENABLED=False)


def log_lines(capsys) -> list[dict]:
    """The JSON lines the app wrote to stderr since the last call (every line must parse)."""
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def access(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "pro_app.access"]


# Health ---------------------------------------------------------------------------------------


def test_healthz_and_readyz_say_one_word_and_set_no_cookie(app, capsys):
    client = app.test_client()
    for path, word in (("/healthz", "ok"), ("/readyz", "ready")):
        reply = client.get(path)
        assert reply.status_code == 200
        assert reply.get_data(as_text=True) == word + "\n"
        assert reply.mimetype == "text/plain"
        assert reply.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in reply.headers
        assert re.fullmatch(r"[0-9a-f]{8}", reply.headers["X-Request-Id"])
    # A monitor asks often: no rate limit, and no log line while all is well.
    assert all(client.get("/readyz").status_code == 200 for _ in range(40))
    assert access(log_lines(capsys)) == []


def test_healthz_needs_no_database_and_readyz_says_not_ready(tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "a-file" / "pro.sqlite")})
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    reply = client.get("/readyz")
    assert reply.status_code == 503 and reply.get_data(as_text=True) == "not ready\n"
    lines = log_lines(capsys)
    assert [line["status"] for line in access(lines)] == [503]
    warning = next(line for line in lines if line["logger"] == "pro_app.health")
    assert "database not writable" in warning["message"]


def test_readyz_with_a_pending_migration(tmp_path):
    path = tmp_path / "older.sqlite"
    names = [m.name for m in migrations.pending(sqlite_utils.Database(memory=True))]
    migrations.apply(sqlite_utils.Database(path), stop_before=names[-1])
    app = create_app({"TESTING": True, "DATABASE": str(path)})
    reply = app.test_client().get("/readyz")
    assert reply.status_code == 503
    body = reply.get_data(as_text=True)
    assert body == "not ready\n" and names[-1] not in body and str(path) not in body


def test_readyz_while_another_process_holds_the_write_lock(app):
    holder = sqlite3.connect(app.config["DATABASE"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        reply = app.test_client().get("/readyz")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert reply.status_code == 503
    assert app.test_client().get("/readyz").status_code == 200


def _read_only(path) -> None:
    """Make the file read-only, also for root (who ignores the permission bits)."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a file read-only as root here: {done.stderr!r}")


def _writable_again(path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=False)
    os.chmod(path, 0o644)


def test_readyz_with_a_read_only_database_file(app):
    path = app.config["DATABASE"]
    _read_only(path)
    try:
        fresh = create_app({"TESTING": True, "DATABASE": path})  # opens the file anew
        reply = fresh.test_client().get("/readyz")
        assert fresh.test_client().get("/healthz").status_code == 200
    finally:
        _writable_again(path)
    assert reply.status_code == 503 and reply.get_data(as_text=True) == "not ready\n"


# Access lines ---------------------------------------------------------------------------------


def test_every_request_writes_one_json_line(app, capsys):
    reply = app.test_client().get("/?lang=en&utm=secret-campaign")
    (line,) = access(log_lines(capsys))
    assert line["request_id"] == reply.headers["X-Request-Id"]
    assert line["method"] == "GET" and line["route"] == "/" and line["endpoint"] == "public.index"
    assert line["status"] == 200 and isinstance(line["duration_ms"], float)
    assert line["level"] == "INFO" and line["time"].endswith("Z")
    assert line["client"] == "127.0.0.0/24"
    assert "secret-campaign" not in json.dumps(line) and "lang" not in json.dumps(line)


def test_a_proxy_request_id_is_kept_and_a_bad_one_replaced(app, capsys):
    client = app.test_client()
    kept = client.get("/", headers={"X-Request-Id": "5f2b7c0e9a1d4e3f8b6a0c2d4e6f8a1b"})
    assert kept.headers["X-Request-Id"] == "5f2b7c0e9a1d4e3f8b6a0c2d4e6f8a1b"
    bad = client.get("/", headers={"X-Request-Id": 'x","level":"forged'})
    assert re.fullmatch(r"[0-9a-f]{8}", bad.headers["X-Request-Id"])
    ids = [line["request_id"] for line in access(log_lines(capsys))]
    assert ids == [kept.headers["X-Request-Id"], bad.headers["X-Request-Id"]]


def test_a_participant_is_logged_by_study_code_only(app, capsys):
    enrol(app, "BTB-0001", email=EMAIL, phone=PHONE)
    token = link_token(app, "BTB-0001", "screening")
    client = app.test_client()
    capsys.readouterr()
    assert client.get(f"/i/{token}").status_code == 200
    assert client.post(f"/i/{token}").status_code == 302
    assert client.get("/a").status_code == 200
    saved = client.post(
        "/a/nrs/1",
        data={"nrs_current": "7", "save_id": "save-7f3a9d", "action": "next"},
    )
    assert saved.status_code == 302
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    routes = [(line["route"], line["status"], line.get("study_code")) for line in access(lines)]
    assert routes == [
        ("/i/<token>", 200, None),
        ("/i/<token>", 302, None),
        ("/a", 200, "BTB-0001"),
        ("/a/<qid>/<int:number>", 302, "BTB-0001"),
    ]
    for secret in (token, EMAIL, PHONE, "nrs_current", "save-7f3a9d", "/a/nrs/1"):
        assert secret not in err


def test_staff_requests_log_the_staff_id_never_the_password_or_email(app, capsys):
    enrol(app, "BTB-0001", email=EMAIL)
    password, secret = account(app, "coord@example.org", "coordinator", ("OUS",))
    client = sign_in(app, "coord@example.org", password, secret)
    assert client.get("/staff/participants/BTB-0001").status_code == 200
    err = capsys.readouterr().err
    lines = access([json.loads(line) for line in err.splitlines() if line.strip()])
    page = lines[-1]
    assert page["route"] == "/staff/participants/<code>" and page["study_code"] == "BTB-0001"
    assert isinstance(page["staff_id"], int)
    for secret_text in (PASSWORD, "coord@example.org", EMAIL, secret):
        assert secret_text not in err


def test_text_lines_in_the_demo_and_a_bad_format_refused(tmp_path, capsys):
    demo = make_app(tmp_path / "d.sqlite", DEMO=True)
    demo.test_client().get("/")
    err = capsys.readouterr().err
    assert "INFO pro_app.access: request [request_id=" in err and "route=/ " in err
    with pytest.raises(LogFormatError, match="PRO_LOG_FORMAT is 'yaml'; use 'json' or 'text'"):
        create_app({"TESTING": True, "DATABASE": str(tmp_path / "x.sqlite"), "LOG_FORMAT": "yaml"})


def test_werkzeug_and_gunicorn_lines_lose_the_token(app, caplog):
    token = "IlKIf8e9WpPuED0Mi3DHabcdefgh"
    caplog.set_level(logging.INFO)
    logging.getLogger("werkzeug").info('127.0.0.1 - - "GET /i/%s HTTP/1.1" 200 -', token)
    logging.getLogger("gunicorn.access").info("%(r)s %(s)s", {"r": f"GET /i/{token}", "s": 200})
    assert token not in caplog.text
    assert caplog.text.count("/i/[token]") == 2


# Error pages ----------------------------------------------------------------------------------


def test_a_not_found_page_shows_the_id_of_its_log_line(app, capsys):
    client = app.test_client()
    nb = client.get("/no/such/page")
    en = client.get("/no/such/page?lang=en")
    lines = access(log_lines(capsys))
    for reply, words in ((nb, "Feilkode"), (en, "Error code")):
        rid = reply.headers["X-Request-Id"]
        assert reply.status_code == 404
        assert f"{words}: 404-{rid}" in reply.get_data(as_text=True)
    assert [(line["status"], line["route"]) for line in lines] == [(404, None), (404, None)]
    assert [line["request_id"] for line in lines] == [
        nb.headers["X-Request-Id"],
        en.headers["X-Request-Id"],
    ]


def _failing(app) -> None:
    def boom():
        raise ValueError(f"cannot read {EMAIL} answer 7")

    app.add_url_rule("/boom", "boom", boom, methods=["GET", "POST"])
    app.add_url_rule("/staff/boom", "staff.boom", boom)


def test_a_server_error_logs_the_exception_type_and_the_page_shows_its_id(app, capsys):
    _failing(app)
    client = app.test_client()
    reply = client.post("/boom?lang=en", data={"password": "hunter2-secret", "q1": "4"})
    assert reply.status_code == 500
    rid = reply.headers["X-Request-Id"]
    html = reply.get_data(as_text=True)
    assert f"Error code: 500-{rid}" in html and "Your saved answers are safe" in html
    assert "ValueError" not in html and "Traceback" not in html
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    failure = next(line for line in lines if line["logger"] == "pro_app.errors")
    assert failure["level"] == "ERROR" and failure["request_id"] == rid
    assert failure["route"] == "/boom"
    assert failure["exception"]["type"] == "builtins.ValueError"
    assert any("in boom" in frame for frame in failure["exception"]["stack"])
    (line,) = access(lines)
    assert line["status"] == 500 and line["request_id"] == rid and line["level"] == "ERROR"
    for secret in (EMAIL, "hunter2-secret", "answer 7", "q1"):
        assert secret not in err


def test_a_staff_error_page_has_the_staff_text_and_the_id(app, capsys):
    _failing(app)
    reply = app.test_client().get("/staff/boom?lang=en")
    rid = reply.headers["X-Request-Id"]
    html = reply.get_data(as_text=True)
    assert reply.status_code == 500 and f"Error code: 500-{rid}" in html
    assert "send the error code below to the person who runs the app" in html
    assert "Your saved answers are safe" not in html
    errors = [line for line in log_lines(capsys) if line["logger"] == "pro_app.errors"]
    assert [line["request_id"] for line in errors] == [rid]
