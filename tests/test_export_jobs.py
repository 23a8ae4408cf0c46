"""Export jobs: started from the page, run in a thread, followed without JavaScript."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.exports.model import Filters
from pro_app.services import export_jobs
from pro_app.storage.db import stamp, utc_now

from .factories import answer, enrol, make_app
from .test_staff import PASSWORD, account, sign_in

FOLLOW = "data-follow"


def finished(client, location: str, seconds: float = 20) -> str:
    """Follow a job page as a browser would (app.js fetches it again) until it is final."""
    deadline = time.monotonic() + seconds
    while True:
        page = client.get(location)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        if FOLLOW not in html:
            return html
        assert time.monotonic() < deadline, "the export job did not finish"
        time.sleep(0.05)


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "j.sqlite", WTF_CSRF_ENABLED=False)
    for number in range(1, 6):
        code = f"BTB-000{number}"
        enrol(app, code, site="OUS" if number % 2 else "HUS")
        values = {"nrs_current": number, "nrs_worst": 9, "nrs_usual": 5}
        answer(app, code, "screening", "nrs", values)
    return app


@pytest.fixture
def staff(app):
    result = {}
    for email, role in (
        ("dm@example.org", "data_manager"),
        ("other@example.org", "data_manager"),
        ("admin@example.org", "admin"),
    ):
        _, secret = account(app, email, role)
        result[email.split("@")[0]] = sign_in(app, email, PASSWORD, secret)
    return result


def db_rows(app, sql, params=()):
    conn = sqlite3.connect(app.config["DATABASE"])
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def start_job(client, **form) -> str:
    reply = client.post("/staff/exports", data={"format": "csv-long", **form})
    assert reply.status_code == 303, reply.get_data(as_text=True)[:500]
    return reply.headers["Location"]


def test_a_job_runs_to_done_and_its_file_matches_header_and_audit(app, staff):
    location = start_job(staff["dm"], excel_safe="1", delimiter=";")
    page = finished(staff["dm"], location)
    assert "Filen er klar" in page and "<progress" not in page
    job_id = location.rsplit("/", 1)[1]
    status, rows, sha, options = db_rows(
        app, "SELECT status, rows, sha256, options FROM export_jobs WHERE id = ?", [job_id]
    )[0]
    assert status == "done" and rows > 0 and sha in page
    assert json.loads(options) == {"bom": True, "delimiter": ";", "excel_safe": True}
    download = staff["dm"].get(f"{location}/download")
    body = download.get_data()
    download.close()
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert download.headers["Content-Disposition"] == (
        "attachment; filename=backtobasic-csv-long.csv"
    )
    assert hashlib.sha256(body).hexdigest() == download.headers["X-Content-SHA256"] == sha
    assert body.startswith(b"\xef\xbb\xbf") and b";" in body.splitlines()[0]
    audit = db_rows(
        app, "SELECT action, actor, new_value FROM audit WHERE entity = 'export' ORDER BY id"
    )
    assert [(a, actor) for a, actor, _ in audit] == [
        ("export", "dm@example.org"),
        ("export.download", "dm@example.org"),
    ]
    assert json.loads(audit[0][2])["sha256"] == sha and json.loads(audit[1][2])["job"] == job_id
    folder = Path(app.config["DATABASE"]).parent / "exports"
    files = list(folder.iterdir())
    assert [f.name for f in files] == [f"{job_id}.csv"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_the_excel_safe_option_reaches_the_writer(app, staff, monkeypatch):
    seen = {}
    real = export_jobs.prepare

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(export_jobs, "prepare", spy)
    finished(staff["dm"], start_job(staff["dm"], excel_safe="1"))
    assert seen["excel_safe"] is True and seen["delimiter"] == ","
    finished(staff["dm"], start_job(staff["dm"]))
    assert seen["excel_safe"] is False


def _queued(app, fmt="csv-wide", total=0) -> str:
    with app.app_context():
        db = get_db()
        staff_id = db.conn.execute("SELECT id FROM staff ORDER BY id LIMIT 1").fetchone()[0]
        return export_jobs.create(
            db,
            staff_id=staff_id,
            fmt=fmt,
            filters=Filters(sites=("OUS", "HUS")),
            options={},
            total=total,
            name=f"test{fmt}",
        )


def test_progress_is_written_as_records_are_read(app, staff, monkeypatch, tmp_path):
    job_id = _queued(app)
    saved = []
    real_save = export_jobs.Progress.save

    def save(self, done):
        real_save(self, done)
        saved.append(db_rows(app, "SELECT status, done FROM export_jobs WHERE id = ?", [job_id]))

    monkeypatch.setattr(export_jobs.Progress, "save", save)
    with app.app_context():
        catalog = catalog_for(app)
    export_jobs.run(app.config["DATABASE"], catalog, job_id, folder=tmp_path, every=2)
    assert [row[0] for row in saved] == [("running", 2), ("running", 4)]
    final = db_rows(app, "SELECT status, total, done, rows FROM export_jobs WHERE id = ?", [job_id])
    assert final == [("done", 5, 5, 5)]
    assert (tmp_path / f"{job_id}.csv").is_file()


def test_progress_steps_by_one_percent_and_beats_when_slow(app, staff):
    job_id = _queued(app, total=1000)
    clock = [0.0]
    with app.app_context():
        progress = export_jobs.Progress(get_db(), job_id, 1000, clock=lambda: clock[0])
        assert progress.step == export_jobs.MIN_STEP  # 1 % of 1000 is 10
        done = lambda: db_rows(app, "SELECT done FROM export_jobs WHERE id = ?", [job_id])[0][0]  # noqa: E731
        for n in range(1, 10):
            progress(n)
        assert done() == 0
        progress(10)
        assert done() == 10
        clock[0] = export_jobs.HEARTBEAT_S + 1  # slow records: the row is still touched
        progress(11)
        assert done() == 11
        assert export_jobs.Progress(get_db(), job_id, 100_000).step == 1000


def test_a_failing_export_shows_its_error(app, staff, monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_jobs, "write_file", broken)
    location = start_job(staff["dm"])
    page = finished(staff["dm"], location)
    assert "Eksporten mislyktes" in page and "disk full" in page
    assert staff["dm"].get(f"{location}/download").status_code == 404
    assert db_rows(app, "SELECT status FROM export_jobs") == [("failed",)]


def test_only_the_starter_or_an_admin_sees_a_job(app, staff):
    location = start_job(staff["dm"])
    finished(staff["dm"], location)
    assert staff["other"].get(location).status_code == 404
    assert staff["other"].get(f"{location}/download").status_code == 404
    assert staff["admin"].get(location).status_code == 200
    download = staff["admin"].get(f"{location}/download")
    download.close()
    assert download.status_code == 200
    assert staff["dm"].get("/staff/exports/no-such-job").status_code == 404
    # The export page lists only one's own jobs.
    assert location in staff["dm"].get("/staff/exports").get_data(as_text=True)
    assert location not in staff["other"].get("/staff/exports").get_data(as_text=True)


def _set(app, job_id, **values):
    columns = ", ".join(f"{k} = ?" for k in values)
    conn = sqlite3.connect(app.config["DATABASE"])
    with conn:
        conn.execute(f"UPDATE export_jobs SET {columns} WHERE id = ?", [*values.values(), job_id])
    conn.close()


def test_a_running_job_page_shows_progress_and_asks_to_be_followed(app, staff):
    job_id = _queued(app, total=40)
    _set(app, job_id, status="running", done=12, updated_at=stamp())
    page = staff["dm"].get(f"/staff/exports/{job_id}").get_data(as_text=True)
    assert f'id="job-status" {FOLLOW}' in page and "<script>" not in page
    assert 'http-equiv="refresh"' not in page  # no timed reload (WCAG 2.2.1)
    assert re.search(r'<progress class="job-progress" [^>]*max="40" value="12"', page)
    assert "12 av 40 svar" in page
    assert f'href="/staff/exports/{job_id}"' in page  # without script: update by hand


def test_an_interrupted_job_shows_as_failed(app, staff):
    job_id = _queued(app, total=40)
    long_ago = stamp(utc_now() - export_jobs.STALE_AFTER - dt.timedelta(seconds=1))
    _set(app, job_id, status="running", done=12, updated_at=long_ago)
    listing = staff["dm"].get("/staff/exports").get_data(as_text=True)
    assert "Mislyktes" in listing
    page = staff["dm"].get(f"/staff/exports/{job_id}").get_data(as_text=True)
    assert FOLLOW not in page and "Start den på nytt" in page
    assert db_rows(app, "SELECT status, error FROM export_jobs") == [("failed", "interrupted")]
    # A job that moved recently is left alone.
    fresh = _queued(app, total=40)
    assert staff["dm"].get(f"/staff/exports/{fresh}").status_code == 200
    assert db_rows(app, "SELECT status FROM export_jobs WHERE id = ?", [fresh]) == [("queued",)]


def test_a_finished_thread_is_not_run_twice(app, staff, tmp_path):
    job_id = _queued(app)
    with app.app_context():
        catalog = catalog_for(app)
    export_jobs.run(app.config["DATABASE"], catalog, job_id, folder=tmp_path)
    first = db_rows(app, "SELECT sha256, finished_at FROM export_jobs")
    export_jobs.run(app.config["DATABASE"], catalog, job_id, folder=tmp_path)
    assert db_rows(app, "SELECT sha256, finished_at FROM export_jobs") == first
    assert len(db_rows(app, "SELECT id FROM audit WHERE action = 'export'")) == 1
