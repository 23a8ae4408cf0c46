"""Exports as jobs: a job row, a thread in the web process, progress in the row.

The thread opens its own two connections: one reads the export (in one snapshot), the other
writes the job's progress, so a progress write never meets the reader's open transaction.
A job whose row has not moved for STALE_AFTER was cut off (the process ended): it is marked
failed as interrupted when it is next read. See docs/decisions/0015-export-jobs-and-plots.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import secrets
import threading
import time
from pathlib import Path

from ..exports.model import Filters
from ..storage.db import connect, one, parse_stamp, rows, stamp, utc_now, write
from .exporting import SUFFIXES, prepare, record, total_records, write_file

log = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(minutes=5)
HEARTBEAT_S = 30.0  # while records flow, the row is touched at least this often
MIN_STEP = 10  # and at most every 1 % of the records, but not for every single record
INTERRUPTED = "interrupted"
ACTIVE = ("queued", "running")


def folder_for(database) -> Path:
    """The exports folder beside the database file (instance/exports by default), owner-only."""
    folder = Path(database).parent / "exports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def file_path(folder, job: dict) -> Path:
    """Where a job's file is kept: named by the job's random id, not by the user."""
    return Path(folder) / f"{job['id']}{SUFFIXES[job['format']]}"


def _plain_filters(filters: Filters) -> str:
    values = dataclasses.asdict(filters)
    for key in ("date_from", "date_to"):
        values[key] = values[key].isoformat() if values[key] else None
    return json.dumps(values, sort_keys=True)


def filters_of(job: dict) -> Filters:
    """The job's filters, as the export service takes them."""
    raw = json.loads(job["filters"])
    day = lambda text: dt.date.fromisoformat(text) if text else None  # noqa: E731
    return Filters(
        timepoints=tuple(raw.get("timepoints", ())),
        sites=tuple(raw.get("sites", ())),
        questionnaires=tuple(raw.get("questionnaires", ())),
        date_from=day(raw.get("date_from")),
        date_to=day(raw.get("date_to")),
        include_partial=bool(raw.get("include_partial")),
    )


def create(
    db, *, staff_id: int, fmt: str, filters: Filters, options: dict, total: int, name: str
) -> str:
    """Add a queued job; return its id (random, so ids cannot be guessed)."""
    job_id = secrets.token_urlsafe(16)
    now = stamp()
    with write(db):
        db.conn.execute(
            "INSERT INTO export_jobs (id, staff_id, format, filters, options, status, total,"
            " file_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
            (
                job_id,
                staff_id,
                fmt,
                _plain_filters(filters),
                json.dumps(options, sort_keys=True),
                total,
                name,
                now,
                now,
            ),
        )
    return job_id


def load(db, job_id: str, now: dt.datetime | None = None) -> dict | None:
    """Return the job, first marking it failed if it stopped moving (it was interrupted)."""
    job = one(db, "SELECT * FROM export_jobs WHERE id = ?", [job_id])
    if job is None or not _stale(job, now):
        return job
    _mark_interrupted(db, job, now)
    return one(db, "SELECT * FROM export_jobs WHERE id = ?", [job_id])


def recent(db, staff_id: int, limit: int = 10, now: dt.datetime | None = None) -> list[dict]:
    """The staff member's latest jobs, newest first (interrupted ones marked as such)."""
    found = rows(
        db,
        "SELECT * FROM export_jobs WHERE staff_id = ? ORDER BY created_at DESC LIMIT ?",
        [staff_id, limit],
    )
    if any(_stale(job, now) for job in found):
        for job in found:
            if _stale(job, now):
                _mark_interrupted(db, job, now)
        return recent(db, staff_id, limit, now)
    return found


def _stale(job: dict, now: dt.datetime | None) -> bool:
    if job["status"] not in ACTIVE:
        return False
    return parse_stamp(job["updated_at"]) < (now or utc_now()) - STALE_AFTER


def _mark_interrupted(db, job: dict, now: dt.datetime | None) -> None:
    with write(db):  # only if nothing moved since it was read
        db.conn.execute(
            "UPDATE export_jobs SET status = 'failed', error = ?, finished_at = ?"
            " WHERE id = ? AND status IN ('queued', 'running') AND updated_at = ?",
            (INTERRUPTED, stamp(now), job["id"], job["updated_at"]),
        )


class Progress:
    """Called with the number of records read; writes it to the job row now and then."""

    def __init__(self, db, job_id: str, total: int, every: int | None = None, clock=time.monotonic):
        self.db, self.job_id, self.clock = db, job_id, clock
        self.step = every or max(MIN_STEP, math.ceil(total / 100))
        self.written, self.at = 0, clock()

    def __call__(self, done: int) -> None:
        if done - self.written >= self.step or self.clock() - self.at >= HEARTBEAT_S:
            self.save(done)

    def save(self, done: int) -> None:
        with write(self.db):
            self.db.conn.execute(
                "UPDATE export_jobs SET done = ?, updated_at = ? WHERE id = ?",
                (done, stamp(), self.job_id),
            )
        self.written, self.at = done, self.clock()


def start(database, catalog, job_id: str, *, folder, base_url: str = "") -> threading.Thread:
    """Run the job in a thread of this process; the request that started it returns at once."""
    thread = threading.Thread(
        target=run,
        args=(database, catalog, job_id),
        kwargs={"folder": folder, "base_url": base_url},
        name=f"export-{job_id[:8]}",
        daemon=True,  # a stopping server does not wait: the job then shows as interrupted
    )
    thread.start()
    return thread


def run(database, catalog, job_id: str, *, folder, base_url: str = "", every=None) -> None:
    """Run one queued job to done or failed, on connections of its own."""
    reader, writer = connect(database), connect(database)
    try:
        _run(reader, writer, catalog, job_id, Path(folder), base_url, every)
    except Exception as exc:  # the page must say it failed, not show it running forever
        log.exception("export job %s failed", job_id)
        try:
            _finish(writer, job_id, status="failed", error=str(exc) or type(exc).__name__)
        except Exception:  # the row stays active and is marked interrupted when read
            log.exception("export job %s: could not record the failure", job_id)
    finally:
        reader.conn.close()
        writer.conn.close()


def _run(reader, writer, catalog, job_id, folder, base_url, every) -> None:
    job = one(writer, "SELECT * FROM export_jobs WHERE id = ?", [job_id])
    if job is None or job["status"] != "queued":
        return
    filters = filters_of(job)
    options = json.loads(job["options"])
    total = total_records(reader, catalog, filters)
    now = stamp()
    with write(writer):
        writer.conn.execute(
            "UPDATE export_jobs SET status = 'running', total = ?, started_at = ?,"
            " updated_at = ? WHERE id = ?",
            (total, now, now, job_id),
        )
    prepared = prepare(
        job["format"],
        reader,
        catalog,
        filters,
        delimiter=options.get("delimiter", ","),
        bom=bool(options.get("bom")),
        base_url=base_url,
        excel_safe=bool(options.get("excel_safe")),
        progress=Progress(writer, job_id, total, every),
    )
    path = file_path(folder, job)
    count, sha = write_file(path, prepared)
    os.chmod(path, 0o600)  # binary writers may have made the file anew
    staff = one(writer, "SELECT email, role FROM staff WHERE id = ?", [job["staff_id"]])
    # The audit row first: a file that can be downloaded is always in the audit log.
    record(
        writer,
        fmt=job["format"],
        filters=filters,
        name=job["file_name"],
        count=count,
        sha=sha,
        actor=staff["email"],
        role=staff["role"],
    )
    _finish(writer, job_id, status="done", rows=count, sha=sha)


def _finish(db, job_id, *, status, rows=None, sha=None, error=None) -> None:
    now = stamp()
    with write(db):
        db.conn.execute(
            "UPDATE export_jobs SET status = ?, rows = ?, sha256 = ?, error = ?,"
            " done = CASE WHEN ? = 'done' THEN MAX(done, total) ELSE done END,"
            " updated_at = ?, finished_at = ? WHERE id = ?",
            (status, rows, sha, error, status, now, now, job_id),
        )
