"""Data commands: db upgrade, participants add/day0, invite, audit verify, contacts, demo."""

from __future__ import annotations

import re
import sqlite3

import pytest

from pro_app import create_app
from pro_app.database import get_db
from pro_app.storage.contacts import cipher_for, load


@pytest.fixture
def app(tmp_path):
    return create_app(
        {
            "TESTING": True,
            "DATABASE": str(tmp_path / "cli.sqlite"),
            "BASE_URL": "https://pro.example.org",
        }
    )


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def test_db_upgrade_is_idempotent_and_sets_durability(run, app):
    first = run("db", "upgrade")
    assert first.exit_code == 0 and "Applied 0001_initial" in first.output
    assert "is up to date" in run("db", "upgrade").output
    conn = sqlite3.connect(app.config["DATABASE"])
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    strict = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'answers'").fetchone()[0]
    assert strict.rstrip().endswith("STRICT")


def test_participants_add_prints_the_schedule(run):
    result = run(
        "participants",
        "add",
        "BTB-0001",
        "--site",
        "OUS",
        "--enrolled",
        "2026-11-01",
        "--day0",
        "2026-12-01",
    )
    assert result.exit_code == 0, result.output
    assert "Enrolled BTB-0001 at OUS on 2026-11-01." in result.output
    assert re.search(r"screening\s+2026-11-01 - 2026-11-30", result.output)
    assert re.search(r"baseline\s+2026-11-24 - 2026-12-01", result.output)
    assert "day278" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["BTB-1", "--site", "OUS", "--enrolled", "2026-11-01"], "does not match the pattern"),
        (["BTB-0002", "--site", "XYZ", "--enrolled", "2026-11-01"], "unknown site 'XYZ'"),
        (
            ["BTB-0002", "--site", "OUS", "--enrolled", "2026-11-01", "--day0", "2026-10-01"],
            "must be after the enrolment date",
        ),
        (
            ["BTB-0002", "--site", "OUS", "--enrolled", "2026-11-01", "--email", "nope"],
            "'nope' is not an e-mail address",
        ),
        (
            ["BTB-0002", "--site", "OUS", "--enrolled", "2026-11-01", "--phone", "12"],
            "is not a mobile number",
        ),
    ],
)
def test_participants_add_refuses_bad_input(run, app, args, message):
    result = run("participants", "add", *args)
    assert result.exit_code == 1 and message in result.output
    run("db", "upgrade")
    conn = sqlite3.connect(app.config["DATABASE"])
    assert conn.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 0


def test_duplicate_code_is_refused_and_nothing_changes(run, app):
    run("participants", "add", "BTB-0001", "--site", "OUS", "--enrolled", "2026-11-01")
    result = run("participants", "add", "BTB-0001", "--site", "HUS", "--enrolled", "2026-11-02")
    assert result.exit_code == 1 and "already enrolled" in result.output
    conn = sqlite3.connect(app.config["DATABASE"])
    assert conn.execute("SELECT site FROM participants").fetchall() == [("OUS",)]


def test_contact_details_are_stored_encrypted_apart(run, app):
    run(
        "participants",
        "add",
        "BTB-0001",
        "--site",
        "OUS",
        "--enrolled",
        "2026-11-01",
        "--email",
        "kari@example.org",
        "--phone",
        "+47 912 34 567",
    )
    from pathlib import Path

    files = [Path(app.config["DATABASE"]), Path(app.config["DATABASE"] + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert b"kari@example.org" not in raw and b"91234567" not in raw
    with app.app_context():
        assert load(get_db(), 1, cipher_for(app.config)) == {
            "email": "kari@example.org",
            "phone": "+4791234567",
        }


def test_set_day0_later(run):
    run("participants", "add", "BTB-0001", "--site", "OUS", "--enrolled", "2026-11-01")
    result = run("participants", "day0", "BTB-0001", "2026-12-01")
    assert result.exit_code == 0 and "day154" in result.output
    assert re.search(r"screening\s+2026-11-01 - 2026-11-30", result.output)
    again = run("participants", "day0", "BTB-0001", "2026-12-02")
    assert again.exit_code == 1 and "already set" in again.output


def test_invite_prints_a_link_and_a_qr_code(run, app, tmp_path):
    run("participants", "add", "BTB-0001", "--site", "OUS", "--enrolled", "2026-11-01")
    svg = tmp_path / "qr.svg"
    result = run("invite", "BTB-0001", "screening", "--qr", str(svg))
    assert result.exit_code == 0, result.output
    link = re.search(r"https://pro\.example\.org/i/([A-Za-z0-9_-]{43})", result.output)
    assert link and svg.read_text().startswith("<?xml")
    conn = sqlite3.connect(app.config["DATABASE"])
    stored = conn.execute("SELECT token_hash FROM invites").fetchall()
    assert len(stored) == 1 and link.group(1) not in stored[0][0]
    terminal = run("invite", "BTB-0001", "screening", "--reissue")
    assert terminal.exit_code == 0 and "█" in terminal.output or "▀" in terminal.output
    assert conn.execute("SELECT COUNT(*) FROM invites WHERE revoked_at IS NULL").fetchone()[0] == 1
    revoked = run("invite", "BTB-0001", "screening", "--revoke")
    assert "Revoked 1 link(s)" in revoked.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["BTB-0404", "screening"], "no participant with study code 'BTB-0404'"),
        (["BTB-0001", "baseline"], "has no timepoint 'baseline' scheduled"),
        (["BTB-0001", "screening", "--revoke", "--reissue"], "not both"),
    ],
)
def test_invite_errors(run, args, message):
    run("participants", "add", "BTB-0001", "--site", "OUS", "--enrolled", "2026-11-01")
    result = run("invite", *args)
    assert result.exit_code != 0 and message in result.output


def test_audit_verify_and_tampering(run, app):
    run("participants", "add", "BTB-0001", "--site", "OUS", "--enrolled", "2026-11-01")
    ok = run("audit", "verify")
    assert ok.exit_code == 0 and "Audit chain intact" in ok.output
    conn = sqlite3.connect(app.config["DATABASE"])
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET new_value = '{}' WHERE id = 1")
    conn.commit()
    broken = run("audit", "verify")
    assert broken.exit_code == 1
    assert "audit row 1: its content does not match its hash" in broken.output


def test_demo_needs_a_demo_instance(run):
    result = run("demo")
    assert result.exit_code == 1 and "PRO_DEMO=1" in result.output


def test_demo_seeds_participants_in_different_states(tmp_path):
    app = create_app({"TESTING": True, "DEMO": True, "DATABASE": str(tmp_path / "d.sqlite")})
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "BTB-0001 baseline" in result.output and "late" in result.output
    assert "/i/" in result.output
    conn = sqlite3.connect(app.config["DATABASE"])
    assert conn.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 4
    assert (
        conn.execute("SELECT COUNT(*) FROM assessments WHERE completed_at IS NOT NULL").fetchone()[
            0
        ]
        == 1
    )
    again = app.test_cli_runner().invoke(args=["demo"])
    assert again.exit_code == 0
    assert conn.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 4


def test_contacts_new_key(run):
    from cryptography.fernet import Fernet

    key = run("contacts", "new-key").output.strip()
    Fernet(key.encode())
