"""`flask doctor` against real files, a real SMTP server and loopback sync targets."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from pro_app import create_app
from pro_app.cli.doctor_checks import CHECKS, backup_result, disk_status, durability
from pro_app.storage.contacts import new_key
from pro_app.storage.schema import migrations
from pro_app.sync.config import Target

from .factories import answer, complete, enrol, make_app
from .live_server import free_port
from .sync_servers import REDCAP_TOKEN, FakeFhir, FakeRedcap, WebhookReceiver

HOOK_SECRET = "webhook-secret-for-doctor"
NOW = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(envelope)
        return "250 OK"


def refuse_everyone(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=False, handled=False)


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
def servers(catalog):
    with (
        FakeRedcap.from_catalog(catalog) as redcap,
        FakeFhir() as fhir,
        WebhookReceiver(HOOK_SECRET) as hook,
    ):
        yield {"redcap": redcap, "fhir": fhir, "hook": hook}


def sync_targets(servers, redcap_token=REDCAP_TOKEN, hook_url=None) -> list[dict]:
    return [
        Target(
            name="redcap", type="redcap", url=servers["redcap"].endpoint, token=redcap_token
        ).model_dump(),
        Target(name="fhir", type="fhir", url=servers["fhir"].endpoint).model_dump(),
        Target(
            name="hook",
            type="webhook",
            url=hook_url or servers["hook"].endpoint,
            secret=HOOK_SECRET,
        ).model_dump(),
    ]


def write_backup(folder: Path, finished: dt.datetime, *, verified=True, archive=True) -> str:
    """A backup file and its manifest as `flask backup` leaves them."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"backtobasic-{finished.strftime('%Y%m%dT%H%M%SZ')}"
    if archive:
        (folder / f"{stem}.sqlite.gz.age").write_bytes(b"age-encrypted")
    manifest = {
        "format": "pro-app-backup/1",
        "file": f"{stem}.sqlite.gz.age",
        "finished_at": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "verified": verified,
    }
    (folder / f"{stem}.manifest.json").write_text(json.dumps(manifest), "utf-8")
    return stem


@pytest.fixture
def config(tmp_path, smtp, servers, catalog):
    """A healthy instance: safe settings, data with audit rows, a fresh verified backup."""
    port, _ = smtp
    settings = {
        "DATABASE": str(tmp_path / "doctor.sqlite"),
        "SECRET_KEY": "doctor-" + "k" * 40,
        "BASE_URL": "https://pro.example.no",
        "CONTACT_KEY": new_key(),
        "BACKUP_DIR": str(tmp_path / "backups"),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_STARTTLS": False,
        "MAIL_FROM": "studie@example.org",
        "SYNC_TARGETS": sync_targets(servers),
    }
    app = make_app(settings["DATABASE"], **settings)
    app.extensions["pro_catalog"] = catalog  # the same definitions, loaded once per session
    enrol(app, "BTB-0001", email="kari@example.org")
    definition = catalog.questionnaires["nrs"]
    answer(app, "BTB-0001", "baseline", "nrs", complete(definition, {}))
    write_backup(tmp_path / "backups", dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    return settings


@pytest.fixture
def doctor(catalog):
    """Run the command in a fresh app (a fresh connection sees a file changed behind it)."""

    def run(settings: dict, *args: str, testing: bool = True):
        app = create_app({"TESTING": testing, **settings})
        if "STUDY" not in settings:  # the shipped definitions, already loaded this session
            app.extensions["pro_catalog"] = catalog
        return app.test_cli_runner().invoke(args=["doctor", *args])

    return run


def lines(result) -> dict[str, str]:
    """{check: line} of a text report (the last line is the summary)."""
    found = {}
    for line in result.output.splitlines()[:-1]:
        status, check, _ = line.split(None, 2)
        found.setdefault(check, line)
        assert status in ("ok", "warn", "FAIL"), line
    return found


def status(result, check: str) -> str:
    return lines(result)[check].split()[0]


def test_a_healthy_instance_passes_every_check(config, smtp, servers, doctor):
    result = doctor(config)
    assert result.exit_code == 0, result.output
    found = lines(result)
    expected = [c for c in CHECKS if c != "sync"] + ["sync:redcap", "sync:fhir", "sync:hook"]
    assert sorted(found) == sorted(expected)
    usage = shutil.disk_usage(Path(config["DATABASE"]).parent)
    disk = {"ok": "ok", "warn": "warn", "fail": "FAIL"}[disk_status(usage.total, usage.free)]
    for check, line in found.items():
        assert line.startswith(disk if check == "disk" else "ok"), line
    assert "hash chain intact" in found["audit"] and "(0 rows)" not in found["audit"]
    assert "EHLO, NOOP; nothing sent" in found["smtp"]
    assert result.output.splitlines()[-1].endswith("0 failed")
    # Nothing was sent anywhere: no e-mail, no record, no resource, no webhook call.
    assert smtp[1].messages == []
    assert servers["redcap"].requests(label="record:import") == []
    assert servers["fhir"].resources() == [] and servers["hook"].deliveries == []


def test_json_output_and_skipping_checks(config, doctor):
    result = doctor(config, "--json", "--skip", "smtp", "--skip", "sync:hook")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    names = [c["check"] for c in report["checks"]]
    assert "smtp" not in names and "sync:hook" not in names and "sync:fhir" in names
    first = report["checks"][0]
    assert set(first) == {"check", "status", "detail", "fix", "ms"}
    assert {c["status"] for c in report["checks"]} <= {"ok", "warn"}
    unknown = doctor(config, "--skip", "sptm")
    assert unknown.exit_code == 2 and "unknown check sptm" in unknown.output


def test_an_unsafe_configuration_fails_but_the_command_still_runs(tmp_path, config, doctor):
    unsafe = {k: v for k, v in config.items() if k not in ("SECRET_KEY", "BASE_URL")}
    result = doctor({**unsafe, "CONTACT_KEY": ""}, testing=False)
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert [line.split(None, 2)[2].split()[0] for line in failed] == [
        "PRO_SECRET_KEY",
        "PRO_BASE_URL",
        "PRO_CONTACT_KEY",
    ]
    assert "contacts new-key" in failed[2]
    demo = doctor({**unsafe, "DEMO": True, "BACKUP_DIR": str(tmp_path / "none")}, testing=False)
    assert demo.exit_code == 0, demo.output  # the demo may run like this: warnings only
    assert status(demo, "config") == "warn" and status(demo, "backup") == "warn"


def test_no_database(tmp_path, config, doctor):
    missing = tmp_path / "elsewhere" / "missing.sqlite"
    result = doctor({**config, "DATABASE": str(missing)})
    assert result.exit_code == 1
    found = lines(result)
    assert found["database"].startswith("FAIL") and "db upgrade" in found["database"]
    assert "not checked: the database did not open" in found["audit"]
    assert not missing.exists()  # the doctor creates nothing


def _checkpoint(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def test_a_damaged_index_fails_integrity(config, doctor):
    path = config["DATABASE"]
    _checkpoint(path)
    conn = sqlite3.connect(path)
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_participants_1'"
    ).fetchone()[0]
    conn.close()
    data = bytearray(Path(path).read_bytes())
    page = (root - 1) * size
    at = data.find(b"BTB-0001", page, page + size)
    assert at > 0
    data[at + 7] = ord("9")  # the index now holds BTB-0009, the table BTB-0001
    Path(path).write_bytes(bytes(data))
    result = doctor(config)
    assert result.exit_code == 1
    line = lines(result)["integrity"]
    assert line.startswith("FAIL") and "missing from index sqlite_autoindex_participants_1" in line
    assert "restore the newest verified backup" in line


def test_rows_pointing_to_missing_rows_fail(config, doctor):
    conn = sqlite3.connect(config["DATABASE"])
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM participants WHERE study_code = 'BTB-0001'")
    conn.commit()
    conn.close()
    result = doctor(config)
    assert result.exit_code == 1
    line = lines(result)["foreign-keys"]
    assert line.startswith("FAIL") and "-> participants" in line


def test_pending_and_unknown_migrations_fail(tmp_path, config, doctor):
    names = [m.name for m in migrations.pending(sqlite_utils.Database(memory=True))]
    older = str(tmp_path / "older.sqlite")
    migrations.apply(sqlite_utils.Database(older), stop_before=names[-1])
    result = doctor({**config, "DATABASE": older})
    assert result.exit_code == 1
    line = lines(result)["migrations"]
    assert f"1 pending: {names[-1]}" in line and "flask --app pro_app db upgrade" in line

    conn = sqlite3.connect(config["DATABASE"])
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
        " VALUES ('pro_app', '9999_from_the_future', '2030-01-01')"
    )
    conn.commit()
    conn.close()
    newer = doctor(config)
    assert newer.exit_code == 1
    assert "does not know: 9999_from_the_future" in lines(newer)["migrations"]


def test_a_changed_audit_row_breaks_the_chain(config, doctor):
    conn = sqlite3.connect(config["DATABASE"])
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET reason = 'edited' WHERE id = 2")
    conn.commit()
    conn.close()
    result = doctor(config)
    assert result.exit_code == 1
    line = lines(result)["audit"]
    assert line.startswith("FAIL") and "audit row 2: its content does not match its hash" in line


def test_a_connection_without_wal_or_full_sync_fails(tmp_path):
    conn = sqlite3.connect(tmp_path / "plain.sqlite")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = NORMAL")
    found = durability(sqlite_utils.Database(conn))
    assert found.status == "fail"
    assert "journal_mode is delete, not wal" in found.detail
    assert "synchronous is 1, not 2 (FULL)" in found.detail
    assert "foreign_keys is off" in found.detail


def test_a_held_write_lock_fails_writable(config, doctor):
    holder = sqlite3.connect(config["DATABASE"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = doctor(config, "--skip", "sync", "--skip", "smtp")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1
    assert "cannot write: database is locked" in lines(result)["writable"]


def test_smtp_unreachable_or_login_refused(config, doctor):
    closed = doctor({**config, "SMTP_PORT": free_port()}, "--skip", "sync")
    assert closed.exit_code == 1
    line = lines(closed)["smtp"]
    assert line.startswith("FAIL") and "ConnectionRefusedError" in line
    assert "PRO_SMTP_HOST, PRO_SMTP_PORT" in line

    guarded = Controller(
        Inbox(),
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=refuse_everyone,
        auth_require_tls=False,
    )
    guarded.start()
    try:
        refused = doctor(
            {**config, "SMTP_PORT": guarded.port, "SMTP_USER": "u", "SMTP_PASSWORD": "wrong"},
            "--skip",
            "sync",
        )
    finally:
        guarded.stop()
    assert refused.exit_code == 1
    assert "refused the login (535)" in lines(refused)["smtp"]
    off = doctor({**config, "SMTP_HOST": ""}, "--skip", "sync")
    assert off.exit_code == 0 and lines(off)["smtp"].startswith("warn  smtp            e-mail off")


def test_sync_targets_unreachable_or_refused(config, servers, doctor):
    servers["fhir"].down()
    settings = {
        **config,
        "SYNC_TARGETS": sync_targets(
            servers,
            redcap_token="F" * 32,
            hook_url=f"http://127.0.0.1:{free_port()}/hook",
        ),
    }
    result = doctor(settings, "--skip", "smtp", "--timeout", "2")
    assert result.exit_code == 1
    found = lines(result)
    assert found["sync:redcap"].startswith("FAIL") and "refused: REDCap" in found["sync:redcap"]
    assert "unreachable: cannot connect" in found["sync:fhir"]
    assert found["sync:hook"].startswith("FAIL") and "unreachable" in found["sync:hook"]
    broken = doctor({**config, "SYNC_TARGETS": '[{"name": "x", "type": "sftp"}]'}, "--skip", "smtp")
    assert broken.exit_code == 1 and "PRO_SYNC_TARGETS[0].type" in lines(broken)["sync"]


def test_broken_definitions_fail_and_stop_the_sync_checks(config, doctor):
    result = doctor({**config, "STUDY": "/no/such/study.yaml"}, "--skip", "smtp")
    assert result.exit_code == 1
    found = lines(result)
    assert "the study file does not exist" in found["definitions"]
    assert "questionnaires check" in found["definitions"]
    assert "not checked: the definitions do not load" in found["sync:redcap"]


def test_backups_missing_old_or_unverified(tmp_path):
    folder = tmp_path / "backups"
    assert backup_result(folder, NOW, demo=False).status == "fail"
    assert backup_result(folder, NOW, demo=True).status == "warn"
    write_backup(folder, NOW - dt.timedelta(hours=27))
    old = backup_result(folder, NOW, demo=False)
    assert old.status == "fail" and "27.0 h ago, more than 26 h" in old.detail
    write_backup(folder, NOW - dt.timedelta(hours=1), verified=False)
    assert backup_result(folder, NOW, demo=False).status == "fail"  # unverified does not count
    write_backup(folder, NOW - dt.timedelta(hours=3), archive=False)
    assert backup_result(folder, NOW, demo=False).status == "fail"  # its file is gone
    good = write_backup(folder, NOW - dt.timedelta(hours=5))
    newer_unverified = backup_result(folder, NOW, demo=False)
    assert newer_unverified.status == "warn" and "was not verified" in newer_unverified.detail
    assert good in newer_unverified.detail
    (folder / "broken.manifest.json").write_text("{not json", "utf-8")
    assert "1 unreadable manifest(s)" in backup_result(folder, NOW, demo=False).detail


def test_a_fresh_verified_backup_is_ok(tmp_path):
    folder = tmp_path / "backups"
    write_backup(folder, NOW - dt.timedelta(hours=25, minutes=59))
    fresh = backup_result(folder, NOW, demo=False)
    assert fresh.status == "ok" and "finished 26.0 h ago" in fresh.detail


def test_an_old_backup_fails_the_command(config, tmp_path, doctor):
    for item in (tmp_path / "backups").iterdir():
        item.unlink()
    write_backup(tmp_path / "backups", dt.datetime.now(dt.UTC) - dt.timedelta(hours=30))
    result = doctor(config, "--skip", "sync", "--skip", "smtp")
    assert result.exit_code == 1
    assert (
        "more than 26 h" in lines(result)["backup"]
        and "flask --app pro_app backup" in (lines(result)["backup"])
    )


@pytest.mark.parametrize(
    ("total", "free", "expected"),
    [
        (1000 * 10**9, 500 * 10**9, "ok"),
        (1000 * 10**9, 149 * 10**9, "warn"),  # under 15 %
        (20 * 10**9, 4 * 10**9, "warn"),  # under 5 GB
        (1000 * 10**9, 49 * 10**9, "fail"),  # under 5 %
        (10 * 10**9, 10**9 - 1, "fail"),  # under 1 GB
    ],
)
def test_disk_thresholds(total, free, expected):
    assert disk_status(total, free) == expected
