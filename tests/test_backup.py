"""Backups: online snapshots taken while answers arrive, sealed with age, verified, restored."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest
import sqlite_utils
from pyrage import x25519

from pro_app import create_app
from pro_app.backup.manifest import parse_name
from pro_app.backup.retention import plan
from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.storage import audit, contacts
from pro_app.storage.contacts import cipher_for
from tests.factories import answer, complete, enrol, make_app

EMAIL = "kari.nordmann@example.no"
NRS = {"nrs_current": 6, "nrs_worst": 8, "nrs_usual": 5}


@pytest.fixture
def keys(tmp_path):
    """An age key pair: the identity file (kept off the server) and the public key."""
    identity = x25519.Identity.generate()
    path = tmp_path / "backup.key"
    path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    return path, str(identity.to_public())


@pytest.fixture
def app(tmp_path, keys):
    return make_app(
        tmp_path / "live.sqlite",
        BACKUP_DIR=str(tmp_path / "backups"),
        BACKUP_RECIPIENT=keys[1],
        CONTACT_KEY="k" * 43 + "=",
    )


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def backup(app, *args):
    result = run(app, "backup", *args)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("Backup written: "))
    return Path(line.removeprefix("Backup written: "))


def submitted(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {
            row[0]
            for row in conn.execute(
                "SELECT p.study_code FROM responses r JOIN assessments a ON a.id = r.assessment_id"
                " JOIN participants p ON p.id = a.participant_id WHERE r.status = 'submitted'"
            )
        }
    finally:
        conn.close()


def test_backup_while_answers_arrive_is_consistent(app, tmp_path, keys):
    stop = threading.Event()
    committed: list[str] = []
    errors: list[BaseException] = []

    def writer():
        number = 1000
        try:
            while not stop.is_set() and number < 1400:
                code = f"BTB-{number:04d}"
                enrol(app, code, email=f"p{number}@example.no")
                answer(app, code, "baseline", "nrs", NRS)
                committed.append(code)  # after the submit's commit
                number += 1
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(committed) < 5 and thread.is_alive():
            time.sleep(0.01)
        before = set(committed)
        archive = backup(app)
        during = len(committed)
        while len(committed) < during + 3 and thread.is_alive():
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors

    restored = tmp_path / "restored" / "pro.sqlite"
    result = run(app, "restore", str(archive), "--to", str(restored), "-i", str(keys[0]))
    assert result.exit_code == 0, result.output
    in_copy = submitted(restored)
    assert before <= in_copy  # every response committed before the backup started
    assert len(in_copy) < len(committed)  # answers kept arriving after the snapshot
    conn = sqlite3.connect(restored)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # Each submit is whole in the copy: its scores and its outbox message are there too.
    orphans = conn.execute(
        "SELECT count(*) FROM responses r WHERE r.status = 'submitted' AND ("
        " NOT EXISTS (SELECT 1 FROM outbox o WHERE o.response_id = r.id)"
        " OR NOT EXISTS (SELECT 1 FROM scores s WHERE s.response_id = r.id))"
    ).fetchone()[0]
    assert orphans == 0
    count, problems = audit.verify(sqlite_utils.Database(conn))
    assert problems == [] and count > 0
    manifest = json.loads(
        archive.with_name(archive.name[: -len(".sqlite.gz.age")] + ".manifest.json").read_text()
    )
    assert (
        manifest["row_counts"]["responses"]
        == conn.execute("SELECT count(*) FROM responses").fetchone()[0]
    )
    conn.close()


def test_backup_does_not_wait_for_a_writer_and_takes_only_committed_rows(app, tmp_path, keys):
    enrol(app, "BTB-0001")
    writer = sqlite3.connect(app.config["DATABASE"], isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the write lock is held through the first backup
    writer.execute(
        "INSERT INTO participants (study_code, site, language, enrolled_on, created_at)"
        " VALUES ('BTB-9999', 'OUS', 'nb', '2026-01-01', '2026-01-01T00:00:00.000000Z')"
    )
    try:
        first = backup(app, "--no-prune")
    finally:
        writer.execute("COMMIT")
        writer.close()
    second = backup(app, "--no-prune")
    codes = {}
    for name, archive in (("first", first), ("second", second)):
        target = tmp_path / f"{name}.sqlite"
        assert (
            run(app, "restore", str(archive), "--to", str(target), "-i", str(keys[0])).exit_code
            == 0
        )
        conn = sqlite3.connect(target)
        codes[name] = {row[0] for row in conn.execute("SELECT study_code FROM participants")}
        conn.close()
    assert codes == {"first": {"BTB-0001"}, "second": {"BTB-0001", "BTB-9999"}}


def _seed(app):
    enrol(app, "BTB-0001", email=EMAIL, phone="+4791234567")
    enrol(app, "BTB-0002", site="HUS", language="en")
    with app.app_context():
        catalog = catalog_for(app)
    for code in ("BTB-0001", "BTB-0002"):
        for qid in ("nrs", "odi"):
            answer(app, code, "baseline", qid, complete(catalog.questionnaires[qid], {}))
    answer(app, "BTB-0002", "baseline", "rmdq", {}, done=False)


def test_restore_gives_back_every_answer_and_contact(app, tmp_path, keys):
    _seed(app)
    archive = backup(app)  # a quiet moment: nothing is written until both exports are made
    restored = tmp_path / "restored.sqlite"
    result = run(app, "restore", str(archive), "--to", str(restored), "--identity", str(keys[0]))
    assert result.exit_code == 0, result.output
    assert "db upgrade" in result.output and "PRO_DATABASE" in result.output

    again = create_app(
        {"TESTING": True, "DATABASE": str(restored), "CONTACT_KEY": app.config["CONTACT_KEY"]}
    )
    exports = {}
    for name, which in (("restored", again), ("live", app)):
        out = tmp_path / f"{name}.csv"
        result = run(which, "export", "--format", "csv-long", "--include-partial", "-o", str(out))
        assert result.exit_code == 0, result.output
        exports[name] = out.read_bytes()
    assert exports["restored"] == exports["live"]
    assert exports["live"].count(b"\n") > 20

    # Contact details come back readable with the same PRO_CONTACT_KEY (kept apart).
    with again.app_context():
        db = get_db()
        person = db.execute("SELECT id FROM participants WHERE study_code = 'BTB-0001'").fetchone()
        assert contacts.load(db, person[0], cipher_for(again.config))["email"] == EMAIL


def test_backup_file_is_encrypted_and_leaves_no_plain_copy(app, tmp_path, keys):
    _seed(app)
    archive = backup(app)
    folder = archive.parent
    data = archive.read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n")
    assert b"SQLite format 3" not in data
    assert EMAIL.encode() not in data and b"BTB-0001" not in data
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([".pro-backup.lock", archive.name, parse_manifest_name(archive)])
    for path in folder.iterdir():
        assert b"SQLite format 3" not in path.read_bytes()[:100]
    manifest = json.loads((folder / parse_manifest_name(archive)).read_text())
    text = json.dumps(manifest)
    assert EMAIL not in text and "BTB-0001" not in text
    assert manifest["verified"] is True and manifest["recipient"] == keys[1]
    assert manifest["started_at"].endswith("Z") and manifest["finished_at"].endswith("Z")
    assert manifest["row_counts"]["participants"] == 2
    assert manifest["row_counts"]["contacts"] == 1
    assert manifest["schema"]["version"] == manifest["schema"]["migrations"][-1]
    assert manifest["sizes"]["encrypted"] == len(data)
    assert manifest["sizes"]["compressed"] < manifest["sizes"]["raw"]
    # The plain copy decrypted with the identity is the database, with the study codes.
    restored = tmp_path / "plain.sqlite"
    assert (
        run(app, "restore", str(archive), "--to", str(restored), "-i", str(keys[0])).exit_code == 0
    )
    plain = restored.read_bytes()
    assert plain.startswith(b"SQLite format 3") and b"BTB-0001" in plain
    assert EMAIL.encode() not in plain  # contact fields are encrypted in the database too


def parse_manifest_name(archive: Path) -> str:
    return archive.name[: -len(".sqlite.gz.age")] + ".manifest.json"


def test_verify_passes_a_good_backup_and_never_touches_the_live_database(app, keys):
    _seed(app)
    archive = backup(app)
    live = Path(app.config["DATABASE"])
    before = live.read_bytes()
    result = run(app, "backup", "verify", str(archive), "-i", str(keys[0]))
    assert result.exit_code == 0, result.output
    assert "is good" in result.output and "audit chain intact" in result.output
    assert "participants" in result.output
    assert live.read_bytes() == before


def test_verify_detects_a_flipped_byte(app, tmp_path, keys):
    _seed(app)
    archive = backup(app)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    result = run(app, "backup", "verify", str(archive), "-i", str(keys[0]))
    assert result.exit_code != 0
    assert "SHA-256 mismatch" in result.output
    assert "cannot be decrypted" in result.output
    # Without a manifest beside it, decryption alone still catches the change.
    alone = tmp_path / "elsewhere" / archive.name
    alone.parent.mkdir()
    alone.write_bytes(bytes(data))
    result = run(app, "backup", "verify", str(alone), "-i", str(keys[0]))
    assert result.exit_code != 0 and "cannot be decrypted" in result.output
    # A file cut short is caught as well.
    alone.write_bytes(bytes(data[: len(data) - 100]))
    result = run(app, "backup", "verify", str(alone), "-i", str(keys[0]))
    assert result.exit_code != 0 and "cannot be decrypted" in result.output


def test_verify_detects_a_manifest_that_does_not_match(app, keys):
    _seed(app)
    archive = backup(app)
    manifest_file = archive.parent / parse_manifest_name(archive)
    good = json.loads(manifest_file.read_text())

    changed = {**good, "sha256": {**good["sha256"], "encrypted": "0" * 64}}
    manifest_file.write_text(json.dumps(changed))
    result = run(app, "backup", "verify", str(archive), "-i", str(keys[0]))
    assert result.exit_code != 0 and "SHA-256 mismatch" in result.output

    changed = {**good, "row_counts": {**good["row_counts"], "responses": 1}}
    manifest_file.write_text(json.dumps(changed))
    result = run(app, "backup", "verify", str(archive), "-i", str(keys[0]))
    assert result.exit_code != 0 and "row counts differ" in result.output


def test_verify_with_the_wrong_identity_names_both_keys(app, tmp_path, keys):
    archive = backup(app)
    other = x25519.Identity.generate()
    wrong = tmp_path / "other.key"
    wrong.write_text(f"{other}\n")
    result = run(app, "backup", "verify", str(archive), "-i", str(wrong))
    assert result.exit_code != 0
    assert keys[1] in result.output and str(other.to_public()) in result.output
    public_only = tmp_path / "public.key"
    public_only.write_text(keys[1] + "\n")
    result = run(app, "backup", "verify", str(archive), "-i", str(public_only))
    assert result.exit_code != 0 and "not an age identity" in result.output


def test_restore_refuses_an_existing_path_and_the_live_database(app, tmp_path, keys):
    archive = backup(app)
    existing = tmp_path / "existing.sqlite"
    existing.write_bytes(b"keep me")
    result = run(app, "restore", str(archive), "--to", str(existing), "-i", str(keys[0]))
    assert result.exit_code != 0 and "already exists" in result.output
    assert existing.read_bytes() == b"keep me"

    live = Path(app.config["DATABASE"])
    before = live.read_bytes()
    result = run(app, "restore", str(archive), "--to", str(live), "-i", str(keys[0]))
    assert result.exit_code != 0 and "live database" in result.output
    assert live.read_bytes() == before

    result = run(
        app,
        "restore",
        str(archive),
        "--to",
        str(tmp_path / ".." / tmp_path.name / "live.sqlite"),
        "-i",
        str(keys[0]),
    )
    assert result.exit_code != 0 and "live database" in result.output

    leftover = tmp_path / "wal.sqlite"
    Path(f"{leftover}-wal").write_bytes(b"")
    result = run(app, "restore", str(archive), "--to", str(leftover), "-i", str(keys[0]))
    assert result.exit_code != 0 and "already exists" in result.output and not leftover.exists()


def test_a_failed_check_keeps_no_backup(app, tmp_path):
    _seed(app)
    live = Path(app.config["DATABASE"])
    conn = sqlite3.connect(live)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET reason = 'edited' WHERE id = 2")
    conn.commit()
    conn.close()
    result = run(app, "backup")
    assert result.exit_code != 0
    assert "audit row 2" in result.output and "no backup was kept" in result.output
    folder = Path(app.config["BACKUP_DIR"])
    assert [p.name for p in folder.iterdir()] == [".pro-backup.lock"]


def test_missing_or_wrong_recipient_says_how_to_make_a_key(tmp_path):
    for value, expected in (
        ("", "PRO_BACKUP_RECIPIENT is not set"),
        ("age1notakey", "not an age public key"),
        (str(x25519.Identity.generate()), "holds a private key"),
    ):
        app = make_app(
            tmp_path / "live.sqlite",
            BACKUP_DIR=str(tmp_path / "backups"),
            BACKUP_RECIPIENT=value,
        )
        result = run(app, "backup")
        assert result.exit_code != 0
        assert expected in result.output
        if not value:
            assert "age-keygen" in result.output and "backup new-key" in result.output
        assert not (tmp_path / "backups").exists()


def test_new_key_writes_an_identity_that_opens_backups(tmp_path):
    app = make_app(tmp_path / "live.sqlite", BACKUP_DIR=str(tmp_path / "backups"))
    key = tmp_path / "made.key"
    result = run(app, "backup", "new-key", "-o", str(key))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = next(line for line in key.read_text().splitlines() if not line.startswith("#"))
    public = str(x25519.Identity.from_str(secret).to_public())
    assert public in result.output
    assert run(app, "backup", "new-key", "-o", str(key)).exit_code != 0  # never overwrites
    app.config["BACKUP_RECIPIENT"] = public
    archive = backup(app)
    assert run(app, "backup", "verify", str(archive), "-i", str(key)).exit_code == 0


def _times(start, end, step):
    moment = start
    while moment <= end:
        yield moment
        moment += step


def test_retention_keeps_newest_per_day_week_and_month():
    utc = dt.UTC
    times = list(
        _times(
            dt.datetime(2026, 1, 1, tzinfo=utc),
            dt.datetime(2026, 12, 31, 18, tzinfo=utc),
            dt.timedelta(hours=6),
        )
    )
    result = plan(times, daily=14, weekly=8, monthly=12)

    def at(month, day):
        return dt.datetime(2026, month, day, 18, tzinfo=utc)

    daily = {at(12, day) for day in range(18, 32)}
    weekly = {
        at(12, 31),
        at(12, 27),
        at(12, 20),
        at(12, 13),
        at(12, 6),
        at(11, 29),
        at(11, 22),
        at(11, 15),
    }  # Sundays, and the newest of the unfinished week 53
    monthly = {
        at(month, last)
        for month, last in (
            (1, 31),
            (2, 28),
            (3, 31),
            (4, 30),
            (5, 31),
            (6, 30),
            (7, 31),
            (8, 31),
            (9, 30),
            (10, 31),
            (11, 30),
            (12, 31),
        )
    }
    assert set(result.keep) == daily | weekly | monthly
    assert len(result.keep) == 30
    assert result.keep[at(12, 31)] == ("newest", "daily", "weekly", "monthly")
    assert result.keep[at(11, 15)] == ("weekly",)
    assert result.keep[at(2, 28)] == ("monthly",)
    assert set(result.delete) == set(times) - set(result.keep)
    assert at(12, 31) - dt.timedelta(hours=6) in result.delete  # older backup the same day


def test_retention_never_deletes_the_newest_and_handles_edges():
    utc = dt.UTC
    times = [dt.datetime(2026, 3, d, tzinfo=utc) for d in range(1, 10)]
    nothing = plan(times, daily=0, weekly=0, monthly=0)
    assert list(nothing.keep) == [times[-1]] and len(nothing.delete) == 8
    assert plan([], daily=14, weekly=8, monthly=12).keep == {}
    # A gap of months: each rule counts periods that have backups, not calendar periods.
    sparse = [dt.datetime(2025, 1, 5, tzinfo=utc), dt.datetime(2026, 6, 5, tzinfo=utc)]
    assert set(plan(sparse, daily=14, weekly=8, monthly=12).keep) == set(sparse)
    with pytest.raises(ValueError):
        plan(times, daily=-1)


def _fake_backup(folder: Path, name: str, *, manifest=True):
    (folder / name).write_bytes(b"age-encryption.org/v1\n...")
    if manifest:
        stem = name[: -len(".sqlite.gz.age")]
        (folder / f"{stem}.manifest.json").write_text(
            json.dumps({"format": "pro-app-backup/1", "file": name, "verified": True})
        )


def test_prune_deletes_only_this_studys_good_backups(app):
    folder = Path(app.config["BACKUP_DIR"])
    folder.mkdir()
    ours = [f"backtobasic-202611{day:02d}T030000Z.sqlite.gz.age" for day in range(1, 11)]
    for name in ours:
        _fake_backup(folder, name)
    _fake_backup(folder, "backtobasic-20261001T030000Z.sqlite.gz.age", manifest=False)
    _fake_backup(folder, "otherstudy-20261001T030000Z.sqlite.gz.age")
    (folder / "notes.txt").write_text("not ours")
    (folder / "backtobasic-copy.sqlite.gz.age").write_text("not named like ours")

    result = run(
        app,
        "backup",
        "prune",
        "--keep-daily",
        "3",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "0",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert "Would delete 7 backup(s); 3 kept." in result.output
    assert "backtobasic-20261001T030000Z.sqlite.gz.age: it has no good manifest" in result.output
    assert len(list(folder.iterdir())) == 1 + 2 * 10 + 1 + 2 + 2  # nothing deleted yet

    result = run(
        app, "backup", "prune", "--keep-daily", "3", "--keep-weekly", "0", "--keep-monthly", "0"
    )
    assert result.exit_code == 0, result.output
    left = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert left == sorted(
        [
            "backtobasic-20261001T030000Z.sqlite.gz.age",
            "backtobasic-copy.sqlite.gz.age",
            "notes.txt",
            "otherstudy-20261001T030000Z.manifest.json",
            "otherstudy-20261001T030000Z.sqlite.gz.age",
        ]
        + [n for n in ours[-3:]]
        + [n[: -len(".sqlite.gz.age")] + ".manifest.json" for n in ours[-3:]]
    )


def test_backup_prunes_after_a_good_backup_and_keeps_the_newest(app):
    folder = Path(app.config["BACKUP_DIR"])
    folder.mkdir()
    for day in range(1, 4):
        _fake_backup(folder, f"backtobasic-202601{day:02d}T030000Z.sqlite.gz.age")
    (folder / ".pro-backup-999-dead.sqlite").write_bytes(b"SQLite format 3\0 left by a kill")
    archive = backup(app, "--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0")
    assert sorted(p.name for p in folder.glob("*.age")) == [archive.name]
    assert not (folder / ".pro-backup-999-dead.sqlite").exists()
    assert parse_name(archive.name)[0] == "backtobasic"


def test_commands_have_help(app):
    for args in (
        ["backup"],
        ["backup", "verify"],
        ["backup", "prune"],
        ["backup", "new-key"],
        ["restore"],
    ):
        result = run(app, *args, "--help")
        assert result.exit_code == 0 and len(result.output) > 200, args


def test_backup_dir_is_relative_to_the_app_root(tmp_path, keys):
    probe = create_app({"TESTING": True, "DATABASE": str(tmp_path / "probe.sqlite")})
    relative = os.path.relpath(tmp_path / "rel", Path(probe.instance_path).parent)
    app = make_app(tmp_path / "live.sqlite", BACKUP_RECIPIENT=keys[1], BACKUP_DIR=relative)
    archive = backup(app)
    assert archive.parent.resolve() == (tmp_path / "rel").resolve()
