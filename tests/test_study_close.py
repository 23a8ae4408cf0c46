"""Closing a study: lock (and unlock), the final archive, and the purge of contact details."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from flask_babel import gettext

from pro_app.catalog import catalog_for
from pro_app.services import api_tokens
from pro_app.services.exporting import FORMATS

from .factories import answer, complete, enrol, link_token, make_app
from .test_export_jobs import finished
from .test_staff import PASSWORD, account, sign_in

ADMIN = "admin@example.org"
LOCK = ("study", "lock", "--by", ADMIN, "--reason", "follow-up ended; database lock")
NRS = ("nrs_current", "nrs_worst", "nrs_usual")


def db_rows(app, sql, params=()):
    conn = sqlite3.connect(app.config["DATABASE"])
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def in_language(app, language: str, text: str) -> str:
    """The text as the app's catalogue has it in language (so the test follows the catalogue)."""
    with app.test_request_context(f"/?lang={language}"):
        return gettext(text)


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "c.sqlite", WTF_CSRF_ENABLED=False)
    account(app, ADMIN, "admin")
    return app


# --- Lock and unlock -------------------------------------------------------------------------


def test_lock_refuses_a_participants_save_and_submit(app):
    enrol(app, "BTB-0001", language="en")
    enrol(app, "BTB-0002", language="nb")
    english, norwegian = app.test_client(), app.test_client()
    assert english.post(f"/i/{link_token(app, 'BTB-0001', 'screening')}").status_code == 302
    assert norwegian.post(f"/i/{link_token(app, 'BTB-0002', 'screening')}").status_code == 302
    # Before the lock: the first page saves and the questionnaire reaches its review page.
    for number, item in enumerate(NRS, 1):
        reply = english.post(f"/a/nrs/{number}", data={item: "4", "action": "next"})
        assert reply.status_code == 302, reply.get_data(as_text=True)[:300]
    saved = db_rows(app, "SELECT COUNT(*) FROM answers")[0][0]
    assert saved == 3
    assert run(app, *LOCK).exit_code == 0

    save = norwegian.post("/a/nrs/1", data={"nrs_current": "5", "action": "next"})
    submit = english.post("/a/nrs/review", data={"submission_id": "s" * 32})
    assert save.status_code == submit.status_code == 423
    html = submit.get_data(as_text=True)
    assert "The study is closed" in html and "You can no longer send answers." in html
    assert "Thank you for taking part." in html and '<html lang="en">' in html
    nb = save.get_data(as_text=True)
    assert in_language(app, "nb", "The study is closed") in nb and '<html lang="nb">' in nb
    assert db_rows(app, "SELECT COUNT(*) FROM answers")[0][0] == saved
    assert db_rows(app, "SELECT COUNT(*) FROM responses WHERE status = 'submitted'") == [(0,)]
    # A link opened after the lock says so at once, instead of a start button that fails.
    opened = app.test_client().get(f"/i/{link_token(app, 'BTB-0002', 'screening')}")
    assert opened.status_code == 423 and "Start" not in opened.get_data(as_text=True)
    # In the participant's own language, in a browser that has no session yet.
    fresh = app.test_client().get(f"/i/{link_token(app, 'BTB-0001', 'screening')}")
    assert fresh.status_code == 423 and "The study is closed" in fresh.get_data(as_text=True)
    assert '<html lang="en">' in fresh.get_data(as_text=True)
    assert app.test_client().get("/offline").status_code == 200


def test_lock_refuses_staff_changes_and_keeps_pages_and_exports(app):
    enrol(app, "BTB-0001", email="kari@example.org")
    answer(app, "BTB-0001", "screening", "nrs", dict(zip(NRS, (3, 9, 5), strict=True)))
    _, secret = account(app, "kari@example.org", "coordinator", ("OUS",))
    coordinator = sign_in(app, "kari@example.org", PASSWORD, secret)
    _, secret = account(app, "dm@example.org", "data_manager")
    assert run(app, *LOCK).exit_code == 0
    audit_before = db_rows(app, "SELECT COUNT(*) FROM audit")[0][0]
    # Signing in still works while locked; so do the pages that only show.
    manager = sign_in(app, "dm@example.org", PASSWORD, secret)
    for path in ("/staff/", "/staff/participants/BTB-0001", "/staff/participants/new"):
        assert coordinator.get(path).status_code == 200, path
    refused = {
        "/staff/participants/new": {"code": "BTB-0009", "site": "OUS", "enrolled": "2026-01-05"},
        "/staff/participants/BTB-0001/baseline/link": {},
        "/staff/participants/BTB-0001/baseline/send": {"channel": "email"},
        "/staff/participants/BTB-0001/day0": {"day0": "2026-02-01", "reason": "moved"},
        "/staff/participants/BTB-0001/withdraw": {"reason": "moved away"},
    }
    for path, form in refused.items():
        reply = coordinator.post(path, data=form)
        assert reply.status_code == 423, path
        html = reply.get_data(as_text=True)
        assert in_language(app, "nb", "The study is locked") in html
        assert ADMIN in html and "follow-up ended; database lock" in html
    assert db_rows(app, "SELECT COUNT(*) FROM participants") == [(1,)]
    assert db_rows(app, "SELECT COUNT(*) FROM invites") == [(0,)]
    assert db_rows(app, "SELECT status, day0 IS NOT NULL FROM participants") == [("active", 1)]
    # Someone not signed in learns nothing about who locked it.
    anonymous = app.test_client().post("/staff/participants/BTB-0001/withdraw", data={})
    assert anonymous.status_code == 423 and ADMIN not in anonymous.get_data(as_text=True)
    # Exports: an export job runs, and so does the token API.
    started = manager.post("/staff/exports", data={"format": "csv-wide"})
    assert started.status_code == 303
    finished(manager, started.headers["Location"])
    job = db_rows(app, "SELECT status, rows FROM export_jobs")
    assert job == [("done", 1)]
    with app.app_context():
        from pro_app.database import get_db

        _, token = api_tokens.create(
            get_db(),
            catalog_for(app).study,
            name="stats",
            role="data_manager",
            sites=(),
            created_by=ADMIN,
        )
    api = app.test_client().get("/api/v1/responses", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200 and len(api.get_json()["data"]) == 1
    actions = [a for (a,) in db_rows(app, "SELECT action FROM audit WHERE id > ?", [audit_before])]
    assert "participant.enrol" not in actions and "invite.issue" not in actions


def test_lock_refuses_enrolment_day0_and_invites_on_the_command_line(app):
    enrol(app, "BTB-0001", day0=None)
    assert run(app, *LOCK).exit_code == 0
    attempts = [
        ("participants", "add", "BTB-0002", "--site", "OUS", "--enrolled", "2026-01-05"),
        ("participants", "day0", "BTB-0001", "2026-02-01"),
        ("invite", "BTB-0001", "screening"),
        ("invite", "BTB-0001", "screening", "--revoke"),
    ]
    for args in attempts:
        result = run(app, *args)
        assert result.exit_code == 1, args
        assert "the study is locked" in result.output and "study unlock" in result.output
    assert db_rows(app, "SELECT COUNT(*) FROM participants") == [(1,)]
    assert db_rows(app, "SELECT day0 FROM participants") == [(None,)]
    assert db_rows(app, "SELECT COUNT(*) FROM invites") == [(0,)]
    reminders = run(app, "reminders", "send")
    assert reminders.exit_code == 0 and "No reminders are sent" in reminders.output
    exported = run(app, "export", "--format", "csv-long", "-o", "-")
    assert exported.exit_code == 0 and "BTB-0001" not in exported.output  # nothing answered
    assert "Audit chain intact" in run(app, "audit", "verify").output


def test_only_an_admin_with_a_reason_unlocks_and_both_are_audited(app):
    account(app, "kari@example.org", "coordinator", ("OUS",))
    enrol(app, "BTB-0001")
    assert "The study is open." in run(app, "study", "status").output
    by_coordinator = run(app, "study", "lock", "--by", "kari@example.org", "--reason", "x")
    assert by_coordinator.exit_code == 1 and "not an active admin" in by_coordinator.output
    assert run(app, "study", "lock", "--by", ADMIN).exit_code == 2  # --reason is required
    blank = run(app, "study", "lock", "--by", ADMIN, "--reason", "  ")
    assert blank.exit_code == 1 and "give a reason" in blank.output
    assert run(app, *LOCK).exit_code == 0
    again = run(app, *LOCK)
    assert again.exit_code == 1 and "already locked" in again.output
    status = run(app, "study", "status").output
    assert "The study is locked since" in status and ADMIN in status
    unlock = ("study", "unlock", "--by")
    assert run(app, *unlock, "kari@example.org", "--reason", "fix").exit_code == 1
    assert run(app, *unlock, ADMIN).exit_code == 2
    assert run(app, *unlock, ADMIN, "--reason", "late paper form from OUS").exit_code == 0
    assert "The study is open." in run(app, "study", "status").output
    audit = db_rows(
        app,
        "SELECT actor, role, action, field, old_value, new_value, reason FROM audit"
        " WHERE action LIKE 'study.%' ORDER BY id",
    )
    assert audit == [
        (ADMIN, "admin", "study.lock", "state", "open", "locked", "follow-up ended; database lock"),
        (ADMIN, "admin", "study.unlock", "state", "locked", "open", "late paper form from OUS"),
    ]
    # Open again: the participant's pages and the commands work.
    client = app.test_client()
    assert client.post(f"/i/{link_token(app, 'BTB-0001', 'screening')}").status_code == 302
    assert client.post("/a/nrs/1", data={"nrs_current": "2"}).status_code == 302
    # The state history is append-only.
    conn = sqlite3.connect(app.config["DATABASE"])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE study_state SET reason = 'other'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM study_state")
    conn.close()


# --- The archive -----------------------------------------------------------------------------


@pytest.fixture
def answered(app):
    catalog = catalog_for(app)
    enrol(app, "BTB-0001", email="kari@example.org")
    enrol(app, "BTB-0002", site="HUS", language="en")
    answer(app, "BTB-0001", "screening", "nrs", dict(zip(NRS, (6, 8, 5), strict=True)))
    answer(app, "BTB-0001", "screening", "odi", complete(catalog.questionnaires["odi"], {}))
    answer(app, "BTB-0002", "screening", "nrs", dict(zip(NRS, (2, 9, 4), strict=True)))
    answer(app, "BTB-0002", "screening", "odi", {"odi1": 3}, done=False)
    return app


def sums(folder: Path) -> dict[str, str]:
    lines = (folder / "SHA256SUMS").read_text().splitlines()
    return {line[66:]: line[:64] for line in lines}


def test_archive_holds_every_format_with_hashes_that_check(answered, tmp_path):
    app = answered
    assert run(app, *LOCK).exit_code == 0
    target = tmp_path / "final"
    result = run(app, "study", "archive", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output  # locked, and every response has these definitions
    manifest = json.loads((target / "MANIFEST.json").read_text())
    assert {f["format"] for f in manifest["files"]} >= set(FORMATS)
    assert manifest["study"] == "backtobasic" and manifest["app_version"]
    assert "0009_study_state" in manifest["schema_migrations"]
    assert manifest["study_state"]["state"] == "locked"
    assert manifest["data_as_of"] == max(
        r[0] for r in db_rows(app, "SELECT COALESCE(submitted_at, started_at) FROM responses")
    )
    listed = sums(target)
    on_disk = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()} - {
        "SHA256SUMS"
    }
    assert set(listed) == on_disk and "MANIFEST.json" in listed
    for name, digest in listed.items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == digest, name
    for entry in manifest["files"]:
        data = (target / entry["path"]).read_bytes()
        assert len(data) == entry["bytes"] and listed[entry["path"]] == entry["sha256"]
    if shutil.which("sha256sum"):
        check = subprocess.run(
            ["sha256sum", "-c", "SHA256SUMS"], cwd=target, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    # The data files hold the answers; the codebook every questionnaire.
    wide = (target / "data" / "backtobasic-csv-wide.csv").read_text()
    assert "BTB-0001" in wide and "BTB-0002" in wide
    # The definitions: the files the app loaded, with the hashes the catalog has.
    catalog = catalog_for(app)
    definitions = json.loads((target / "definitions" / "definitions.json").read_text())
    by_id = {d["id"]: d for d in definitions["questionnaires"]}
    assert set(by_id) == set(catalog.questionnaires)
    for qid, definition in catalog.questionnaires.items():
        entry = by_id[qid]
        assert entry["content_hash"] == definition.content_hash
        assert entry["version"] == definition.version
        original = hashlib.sha256(Path(definition.source).read_bytes()).hexdigest()
        assert entry["sha256"] == original == listed[entry["file"]]
    stored = by_id["nrs"]["in_responses"]
    assert stored == [
        {
            "version": catalog.questionnaires["nrs"].version,
            "content_hash": catalog.questionnaires["nrs"].content_hash,
            "responses": 2,
        }
    ]
    study = definitions["study"]
    assert study["content_hash"] == catalog.study.content_hash
    assert study["sha256"] == hashlib.sha256(Path(catalog.study.source).read_bytes()).hexdigest()
    # The audit trail, with its chain verdict; the archive itself is audited.
    trail = json.loads((target / "audit" / "backtobasic-audit-json.json").read_text())
    assert trail["verification"] == {"intact": True, "problems": [], "rows": len(trail["rows"])}
    assert manifest["audit_chain"]["intact"] and manifest["audit_chain"]["head_id"] == len(
        trail["rows"]
    )
    (row,) = db_rows(app, "SELECT actor, new_value FROM audit WHERE action = 'study.archive'")
    recorded = json.loads(row[1])
    sums_sha = hashlib.sha256((target / "SHA256SUMS").read_bytes()).hexdigest()
    assert recorded["sha256sums_sha256"] == sums_sha and recorded["locked"] is True
    assert not list(tmp_path.glob(".final.partial-*"))


def test_two_archives_of_the_same_data_have_the_same_files(answered, tmp_path):
    app = answered
    assert run(app, *LOCK).exit_code == 0
    first, second = tmp_path / "one", tmp_path / "two"
    second.mkdir()  # an empty folder is fine
    assert run(app, "study", "archive", "-o", str(first)).exit_code == 0
    assert run(app, "study", "archive", "-o", str(second)).exit_code == 0
    one, two = sums(first), sums(second)
    assert set(one) == set(two)
    differ = {name for name in one if one[name] != two[name]}
    # Only the manifest (its time, and the audit files' hashes) and the audit trail, which
    # has gained the first archive's own audit row.
    assert differ == {
        "MANIFEST.json",
        "audit/backtobasic-audit-csv.csv",
        "audit/backtobasic-audit-json.json",
    }
    old = (first / "audit" / "backtobasic-audit-csv.csv").read_bytes()
    new = (second / "audit" / "backtobasic-audit-csv.csv").read_bytes()
    assert new.startswith(old)
    added = new[len(old) :].decode().splitlines()
    assert len(added) == 1 and ",study.archive,archive,one," in added[0]
    m1, m2 = (json.loads((f / "MANIFEST.json").read_text()) for f in (first, second))
    same = {k for k in m1 if m1[k] == m2[k]}
    assert set(m1) - same == {"created_at", "audit_chain", "files"}


def test_archive_refuses_a_used_folder_and_warns_when_open(answered, tmp_path):
    app = answered
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    refused = run(app, "study", "archive", "-o", str(used))
    assert refused.exit_code == 1 and "not an empty folder" in refused.output
    assert [p.name for p in used.iterdir()] == ["notes.txt"]
    open_study = run(app, "study", "archive", "-o", str(tmp_path / "early"))
    assert open_study.exit_code == 0
    assert "warning: the study is not locked" in open_study.output
    unknown = run(app, "study", "archive", "-o", str(tmp_path / "x"), "--by", "nobody@example.org")
    assert unknown.exit_code == 1 and "not an active admin or data manager" in unknown.output
    assert not (tmp_path / "x").exists()


def test_archive_reports_a_broken_audit_chain(answered, tmp_path):
    app = answered
    conn = sqlite3.connect(app.config["DATABASE"])
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET reason = 'edited' WHERE id = 2")
    conn.commit()
    conn.close()
    result = run(app, "study", "archive", "-o", str(tmp_path / "broken"))
    assert result.exit_code == 1 and "audit row 2" in result.output
    manifest = json.loads((tmp_path / "broken" / "MANIFEST.json").read_text())
    assert manifest["audit_chain"]["intact"] is False
    trail = json.loads((tmp_path / "broken" / "audit" / "backtobasic-audit-json.json").read_text())
    assert trail["verification"]["intact"] is False


def test_archive_refuses_definitions_changed_since_they_were_loaded(tmp_path):
    root = Path(__file__).resolve().parent.parent
    questionnaires = tmp_path / "questionnaires"
    shutil.copytree(root / "questionnaires", questionnaires)
    study = tmp_path / "backtobasic.yaml"
    shutil.copyfile(root / "studies" / "backtobasic.yaml", study)
    app = make_app(tmp_path / "d.sqlite", QUESTIONNAIRES_DIR=str(questionnaires), STUDY=str(study))
    catalog_for(app)  # loaded as the running app has it
    text = (questionnaires / "nrs.yaml").read_text()
    (questionnaires / "nrs.yaml").write_text(text.replace("version:", "version: '9'\n#", 1))
    result = run(app, "study", "archive", "-o", str(tmp_path / "archive"))
    assert result.exit_code == 1 and "differ from the definitions loaded" in result.output
    assert "(nrs)" in result.output
    assert not (tmp_path / "archive").exists()
    assert not list(tmp_path.glob(".archive.partial-*"))


# --- Purging contact details -----------------------------------------------------------------


@pytest.fixture
def people(app):
    catalog = catalog_for(app)
    # Follow-up long over: day278's window closed well over 90 days ago.
    enrol(app, "BTB-0001", enrolled=-900, day0=-880, email="old@example.org", phone="+4791111111")
    enrol(app, "BTB-0002", email="now@example.org")  # in follow-up
    enrol(app, "BTB-0003", email="gone@example.org")  # withdrawn today
    enrol(app, "BTB-0004", day0=None, email="nodate@example.org")  # day 0 not set
    enrol(app, "BTB-0005", enrolled=-900, day0=-880)  # no contact details
    answer(app, "BTB-0002", "screening", "nrs", dict(zip(NRS, (6, 8, 5), strict=True)))
    answer(app, "BTB-0002", "baseline", "odi", complete(catalog.questionnaires["odi"], {}))
    answer(app, "BTB-0003", "screening", "nrs", dict(zip(NRS, (1, 2, 3), strict=True)))
    _, secret = account(app, "kari@example.org", "coordinator", ("OUS",))
    coordinator = sign_in(app, "kari@example.org", PASSWORD, secret)
    reply = coordinator.post("/staff/participants/BTB-0003/withdraw", data={"reason": "moved"})
    assert reply.status_code == 302
    return coordinator


def data_hash(app) -> str:
    digest = hashlib.sha256()
    for table in ("responses", "answers", "scores"):
        digest.update(repr(db_rows(app, f"SELECT * FROM {table} ORDER BY id")).encode())
    return digest.hexdigest()


def contacts(app) -> list[str]:
    return [
        code
        for (code,) in db_rows(
            app,
            "SELECT study_code FROM contacts JOIN participants p ON p.id = participant_id"
            " ORDER BY study_code",
        )
    ]


def test_purge_dry_run_deletes_nothing(app, people):
    audit = db_rows(app, "SELECT COUNT(*) FROM audit")
    result = run(app, "contacts", "purge", "--by", ADMIN, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "BTB-0001  would purge" in result.output
    for code in ("BTB-0002", "BTB-0003", "BTB-0004"):
        assert f"{code}  keep" in result.output
    assert "BTB-0005" not in result.output
    assert "day 0 is not set" in result.output and "withdrawn" in result.output
    assert "Would delete contact details of 1 participant(s)." in result.output
    assert contacts(app) == ["BTB-0001", "BTB-0002", "BTB-0003", "BTB-0004"]
    assert db_rows(app, "SELECT COUNT(*) FROM audit") == audit


def test_purge_deletes_only_those_past_the_rule_and_leaves_answers(app, people):
    before = data_hash(app)
    assert "old@example.org" in people.get("/staff/participants/BTB-0001").get_data(as_text=True)
    result = run(app, "contacts", "purge", "--by", ADMIN)
    assert result.exit_code == 0, result.output
    assert contacts(app) == ["BTB-0002", "BTB-0003", "BTB-0004"]
    assert data_hash(app) == before
    lines = {line.split(":")[0]: line for line in result.output.splitlines()}
    assert lines["Before"].split("SHA-256")[1] == lines["After "].split("SHA-256")[1]
    assert "Answers untouched" in result.output
    audit = db_rows(
        app,
        "SELECT actor, action, entity_id, old_value, new_value, reason FROM audit"
        " WHERE action LIKE 'contacts.purge%' ORDER BY id",
    )
    assert [a[:3] for a in audit] == [
        (ADMIN, "contacts.purge", "BTB-0001"),
        (ADMIN, "contacts.purge.check", None),
    ]
    assert json.loads(audit[0][3]) == {"email": True, "phone": True}
    assert audit[0][5].startswith("retention 90 days: follow-up ended")
    check = json.loads(audit[1][4])
    assert check["participants"] == 1 and check["answers"] > 0
    dumped = repr(db_rows(app, "SELECT * FROM audit"))
    assert "old@example.org" not in dumped and "91111111" not in dumped
    assert "old@example.org" not in result.output
    # The coordinator's page no longer shows the e-mail address; the others' pages still do.
    page = people.get("/staff/participants/BTB-0001").get_data(as_text=True)
    assert "old@example.org" not in page and "+4791111111" not in page
    assert "now@example.org" in people.get("/staff/participants/BTB-0002").get_data(as_text=True)
    assert "Audit chain intact" in run(app, "audit", "verify").output
    again = run(app, "contacts", "purge", "--by", ADMIN)
    assert "Deleted contact details of 0 participant(s)." in again.output


def test_forced_purge_needs_names_a_reason_and_an_admin(app, people):
    assert run(app, "contacts", "purge", "--by", ADMIN, "--force").exit_code == 2
    no_reason = run(app, "contacts", "purge", "--by", ADMIN, "--force", "--participant", "BTB-0003")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    coordinator = run(app, "contacts", "purge", "--by", "kari@example.org")
    assert coordinator.exit_code == 1 and "only an admin" in coordinator.output
    unknown = run(app, "contacts", "purge", "--by", ADMIN, "--participant", "BTB-0099")
    assert unknown.exit_code == 1 and "BTB-0099" in unknown.output
    before = data_hash(app)
    forced = run(
        app,
        "contacts",
        "purge",
        "--by",
        ADMIN,
        "--participant",
        "BTB-0003",
        "--force",
        "--reason",
        "asked to be forgotten",
    )
    assert forced.exit_code == 0, forced.output
    assert contacts(app) == ["BTB-0001", "BTB-0002", "BTB-0004"]  # only the named one
    assert data_hash(app) == before
    reason = db_rows(app, "SELECT reason FROM audit WHERE action = 'contacts.purge'")
    assert reason == [("forced: asked to be forgotten",)]
    # Purging is allowed while the study is locked (it is how a study ends).
    assert run(app, *LOCK).exit_code == 0
    assert run(app, "contacts", "purge", "--by", ADMIN).exit_code == 0
    assert contacts(app) == ["BTB-0002", "BTB-0004"]


def test_archive_warns_about_responses_scored_with_other_definitions(answered, tmp_path):
    app = answered
    conn = sqlite3.connect(app.config["DATABASE"])
    conn.execute(
        "INSERT INTO responses (uuid, assessment_id, questionnaire, definition_version,"
        " definition_hash, status, started_at, version) VALUES ('old-1', 1, 'nrs', '0.9', ?,"
        " 'in_progress', '2026-01-01T00:00:00.000000Z', 7)",
        ["a" * 64],
    )
    conn.commit()
    conn.close()
    result = run(app, "study", "archive", "-o", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    assert "warning: 1 response(s) of nrs were scored with version 0.9 (aaaaaaaaaaaa...)" in (
        result.output
    )
    definitions = json.loads((tmp_path / "a" / "definitions" / "definitions.json").read_text())
    nrs = next(q for q in definitions["questionnaires"] if q["id"] == "nrs")
    assert {"version": "0.9", "content_hash": "a" * 64, "responses": 1} in nrs["in_responses"]
