"""Benchmark: every export format over a trial-sized database, one fresh process per format.

How to run (from the project root, after `make install`):

    .venv/bin/python scripts/export_benchmark.py                    # 10,000 participants
    .venv/bin/python scripts/export_benchmark.py --participants 1000 --format fhir --format sav
    .venv/bin/python scripts/export_benchmark.py --compare-participants 1000   # flat memory?

This is a script, not a test: timings depend on the machine, so nothing is asserted about them.
The first run at the full size builds the database (about 70 s and 800 MB on 2 cores); later
runs with the same size reuse it. A whole run at the full size takes about ten minutes.

What it does:

1. The database. Builds a SQLite file with the app's migrations (pro_app.storage.schema) and
   fills it directly with executemany in large transactions: N participants (default
   10,000) with the study's schedule (BackToBasic: 22 timepoints, 34 questionnaires a
   participant), and for each assessment its responses as a participant's phone leaves them:
   the answer journal page save by page save (some answers changed on a second save of the
   page), submitted responses with their scores computed by the real scoring function
   (pro_app.domain.scoring.score) and their safety alerts. About 8 % of assessments are
   missed (15 % at timepoints with reminders of their own, the weekly ones), 4 % of
   responses are left in progress and 2 % never started; declined and not applicable
   answers appear where an item allows them (about 5 % each), and display conditions hide
   what they hide. Answer sheets are drawn from a pool of scored sheets per questionnaire
   (so scoring does not dominate the build). The audit trail
   holds a hash-chained row per enrolment and per submit (the real trail also has a row per
   page save, so it is several times longer); invites, page saves and the outbox are left
   empty: no export reads them. The size parameters are stored in the file
   (`benchmark_params`); a file with the same ones and no pending migration is reused, one
   without that table is never overwritten.

2. The exports. Each format (pro_app.services.exporting.FORMATS, or those given with
   --format) runs in a fresh Python process, through the same service as `flask export`
   (prepare, then write_file: a temporary file, fsync, rename and its SHA-256), so each
   format's peak memory is its own. The child reports the records it read, the rows it
   wrote, the seconds (prepare + write_file, as the command spends them), the file's size,
   its resident memory after importing the app and opening the database (`base`; for sav
   and dta after importing pandas and pyreadstat too), its peak (`peak`, set-up included)
   and the export's own share (`own`: the peak while exporting, less `base`), and the load
   average when it started. Memory is read from /proc/self/status (VmRSS, VmHWM, with the
   peak reset before the export through /proc/self/clear_refs): getrusage's ru_maxrss is
   not reset by exec, so in a child it starts at the parent's peak.

The `memory` column says how each format is written: `streams` (one record, or one
participant × timepoint row, at a time: memory stays flat however large the study), `in
memory` (sav and dta: pyreadstat writes from a pandas DataFrame of the whole wide table), or
`definitions` (the codebook, the dictionaries: no records read). --compare-participants M
also runs at M participants and prints each format's `own` memory at both sizes, so a
streaming format whose memory grows with the data shows up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://pro.example.no"
GENERATOR = 1  # bump when the generated data change, so older files are rebuilt
MB = 1024 * 1024

# Shares of the generated data.
MISSED = 0.08  # an assessment with no response at all
MISSED_OWN_REMINDERS = 0.15  # the same for timepoints with their own reminders (weekly)
NOT_STARTED = 0.02  # one questionnaire of an attended assessment never opened
PARTIAL = 0.04  # one questionnaire left in progress
DECLINED_SHARE = 0.05  # of the answers to skippable items
NOT_APPLICABLE_SHARE = 0.05  # of the answers to items that offer it
CHANGED = 0.05  # answers given, then changed on a second save of the page
SHEETS = 200  # scored answer sheets per questionnaire to draw from
CHUNK = 250  # participants per transaction
SECONDS_PER_PAGE = 40
TEXTS = (
    "Fysioterapi",
    "Kiropraktor, to ganger",
    'Akupunktur og "naprapati"',
    "Smertestillende (paracet) og trening på treningssenter",
    "Massasje\nog tøying hjemme",
    "Operasjon i 2019; ingen bedring",
)
MEMORY = {
    "sav": "in memory",
    "dta": "in memory",
    "codebook": "definitions",
    "codebook-html": "definitions",
    "fhir-questionnaires": "definitions",
    "redcap-dictionary": "definitions",
}
FLAT_MB = 20  # more growth than this between two sizes is reported for a streaming format


def _app_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


# --- Answer sheets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sheet:
    """One way through a questionnaire: page saves of (item, stored text), scores, alerts."""

    saves: tuple[tuple[tuple[str, str], ...], ...]
    scores: tuple[tuple[str, str, str | None], ...]
    alerts: tuple[str, ...]


def _real_value(item, rng: random.Random):
    kind = item.type
    if kind == "multiple_choice":
        codes = list(item.codes())
        most = min(3, item.max_selected or 3, len(codes))
        return sorted(rng.sample(codes, rng.randint(1, most)))
    if kind == "integer":
        return rng.randint(item.min, min(item.max, item.min + max(1, (item.max - item.min) // 4)))
    if kind == "text":
        return rng.choice(TEXTS)
    if kind == "date":
        return (dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(8766))).isoformat()
    return rng.choice(item.codes())


def _value(item, rng: random.Random):
    if item.skippable and rng.random() < DECLINED_SHARE:
        return "declined"
    if item.not_applicable is not None and rng.random() < NOT_APPLICABLE_SHARE:
        return "not_applicable"
    return _real_value(item, rng)


def make_sheet(definition, rng: random.Random) -> Sheet:
    """Answer page by page as a participant does, then score what submit would score."""
    from pro_app.domain.answers import validate_answers
    from pro_app.domain.paths import effective_answers, visible_items
    from pro_app.domain.scoring import score
    from pro_app.services.journal import encode

    answers: dict = {}
    saves = []
    for page in definition.pages:
        shown = set(visible_items(definition, answers))  # conditions see earlier pages only
        first, second = [], []
        for item_id in (i for i in page.items if i in shown):
            item = definition.item(item_id)
            value = _value(item, rng)
            if rng.random() < CHANGED:
                before = _real_value(item, rng)
                if before != value:
                    first.append((item_id, encode(before)))
                    second.append((item_id, encode(value)))
                    answers[item_id] = value
                    continue
            first.append((item_id, encode(value)))
            answers[item_id] = value
        saves += [tuple(s) for s in (first, second) if s]
    given = {k: v for k, v in effective_answers(definition, answers).items() if v is not None}
    sheet = score(definition, validate_answers(definition, given, strict=True))
    scores = tuple(
        (score_id, json.dumps(result.value), result.reason)
        for score_id, result in sheet.scores.items()
    )
    return Sheet(tuple(saves), scores, sheet.alerts)


# --- The database ------------------------------------------------------------------------------


def params_of(catalog, participants: int, timepoints: tuple[str, ...], seed: int) -> dict:
    return {
        "generator": GENERATOR,
        "participants": participants,
        "timepoints": list(timepoints),
        "seed": seed,
        "definitions": {q: d.content_hash for q, d in sorted(catalog.questionnaires.items())},
    }


def stored_params(path: Path) -> dict | None:
    """The size parameters a benchmark file was built with; None if it has none."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT params FROM benchmark_params").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()
    return json.loads(row[0]) if row else None


def pending_migrations(path: Path) -> list[str]:
    """Migrations the app has and the file lacks (its data would miss their columns)."""
    import sqlite_utils

    from pro_app.storage.schema import migrations

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [m.name for m in migrations.pending(sqlite_utils.Database(conn))]
    finally:
        conn.close()


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _receipt(number: int) -> str:
    from pro_app.services.submit import RECEIPT_ALPHABET

    base = len(RECEIPT_ALPHABET)
    letters = []
    for _ in range(8):
        number, digit = divmod(number, base)
        letters.append(RECEIPT_ALPHABET[digit])
    return f"{''.join(letters[:4])}-{''.join(letters[4:])}"


INSERTS = {
    "participants": "INSERT INTO participants (id, study_code, site, language, enrolled_on,"
    " day0, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "assessments": "INSERT INTO assessments (id, participant_id, timepoint, target_day,"
    " first_day, last_day, opens_at, closes_at, late_from, can_be_late, completed_at,"
    " receipt_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "responses": "INSERT INTO responses (id, uuid, assessment_id, questionnaire,"
    " definition_version, definition_hash, status, started_at, submitted_at, submission_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "answers": "INSERT INTO answers (response_id, item, value, save_id, client_time,"
    " server_time, actor) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "scores": "INSERT INTO scores (response_id, score, value, reason, definition_version,"
    " definition_hash, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "alerts": "INSERT INTO alerts (response_id, participant_id, site, alert, raised_at)"
    " VALUES (?, ?, ?, ?, ?)",
    "audit": "INSERT INTO audit (at, actor, role, action, entity, entity_id, field, old_value,"
    " new_value, reason, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
}


class Builder:
    """Rows for a chunk of participants, written with executemany in one transaction."""

    def __init__(self, catalog, timepoints: tuple[str, ...], rng: random.Random):
        from pro_app.storage import audit

        self.study = catalog.study
        self.definitions = catalog.questionnaires
        self.chosen = set(timepoints)
        self.own_reminders = {t.id for t in self.study.timepoints if t.reminder_days is not None}
        self.rng = rng
        self.sheets = {
            q: [make_sheet(self.definitions[q], rng) for _ in range(SHEETS)]
            for q in sorted({q for t in self.study.timepoints for q in t.questionnaires})
        }
        self.chain_hash = audit.chain_hash
        self.head = audit.GENESIS
        self.ids = {"assessment": 0, "response": 0, "receipt": 0}
        self.rows: dict[str, list] = {table: [] for table in INSERTS}

    def _audit(self, at, actor, role, action, entity, entity_id, field=None, old=None, new=None):
        row = {
            "at": at,
            "actor": actor,
            "role": role,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "field": field,
            "old_value": old,
            "new_value": new,
            "reason": None,
        }
        digest = self.chain_hash(self.head, row)
        self.rows["audit"].append((*row.values(), self.head, digest))
        self.head = digest

    def participant(self, number: int) -> None:
        from pro_app.domain.schedule import build_schedule
        from pro_app.storage.db import stamp

        rng, study = self.rng, self.study
        code = f"BTB-{number:04d}"
        if not study.code_is_valid(code):
            raise SystemExit(f"{code} does not match {study.code_pattern}: use fewer participants")
        site = rng.choice(study.sites).id
        language = "nb" if rng.random() < 0.85 else "en"
        enrolled = dt.date(2024, 1, 8) + dt.timedelta(days=rng.randrange(365))
        day0 = enrolled + dt.timedelta(days=rng.randint(14, 42))
        pid = number + 1
        created = stamp(dt.datetime.combine(enrolled, dt.time(9, 30), tzinfo=study.zone))
        self.rows["participants"].append(
            (pid, code, site, language, enrolled.isoformat(), day0.isoformat(), created)
        )
        new = {"day0": str(day0), "enrolled_on": str(enrolled), "language": language, "site": site}
        enrol = json.dumps(new, sort_keys=True, separators=(",", ":"))
        self._audit(created, "cli", "admin", "participant.enrol", "participant", code, new=enrol)
        for a in build_schedule(study, enrolled, day0):
            if a.timepoint in self.chosen:
                self._assessment(pid, code, site, a)

    def _assessment(self, pid: int, code: str, site: str, a) -> None:
        from pro_app.storage.db import stamp

        rng = self.rng
        self.ids["assessment"] += 1
        aid = self.ids["assessment"]
        row = [
            aid,
            pid,
            a.timepoint,
            a.target.isoformat(),
            a.first_day.isoformat(),
            a.last_day.isoformat(),
            stamp(a.opens_at),
            stamp(a.closes_at),
            stamp(a.late_from),
            int(a.can_be_late),
            None,
            None,
        ]
        missed = MISSED_OWN_REMINDERS if a.timepoint in self.own_reminders else MISSED
        if rng.random() < missed:
            self.rows["assessments"].append(tuple(row))
            return
        # A day in the first 60 % of the window, between 08:00 and 22:00 in the study's zone.
        days = (a.last_day - a.first_day).days + 1
        day = a.first_day + dt.timedelta(days=rng.randrange(max(1, int(days * 0.6))))
        moment = dt.datetime.combine(day, dt.time(8), tzinfo=self.study.zone).astimezone(dt.UTC)
        moment += dt.timedelta(seconds=rng.uniform(0, 14 * 3600))
        last_submit = None
        all_in = True
        for q in a.questionnaires:
            draw = rng.random()
            if draw < NOT_STARTED:
                all_in = False
                continue
            submitted = draw >= NOT_STARTED + PARTIAL
            all_in = all_in and submitted
            moment, submitted_at = self._response(aid, pid, code, site, q, moment, submitted)
            last_submit = submitted_at or last_submit
        if all_in and last_submit:
            self.ids["receipt"] += 1
            row[10], row[11] = last_submit, _receipt(self.ids["receipt"])
        self.rows["assessments"].append(tuple(row))

    def _response(self, aid, pid, code, site, q, moment, submitted):
        from pro_app.storage.db import stamp

        rng, definition = self.rng, self.definitions[q]
        sheet = rng.choice(self.sheets[q])
        saves = sheet.saves if submitted else sheet.saves[: rng.randint(0, len(sheet.saves))]
        self.ids["response"] += 1
        rid = self.ids["response"]
        response_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        started = stamp(moment)
        answers = self.rows["answers"]
        for number, save in enumerate(saves, 1):
            save_id = f"{rng.getrandbits(128):032x}"
            at = stamp(moment + dt.timedelta(seconds=SECONDS_PER_PAGE * number))
            actor = f"participant:{code}"
            answers.extend((rid, item, value, save_id, at, at, actor) for item, value in save)
        moment += dt.timedelta(seconds=SECONDS_PER_PAGE * (len(saves) + 2))
        submitted_at = stamp(moment) if submitted else None
        self.rows["responses"].append(
            (
                rid,
                response_uuid,
                aid,
                q,
                definition.version,
                definition.content_hash,
                "submitted" if submitted else "in_progress",
                started,
                submitted_at,
                f"{rng.getrandbits(128):032x}" if submitted else None,
            )
        )
        if submitted:
            self.rows["scores"].extend(
                (rid, s, value, reason, definition.version, definition.content_hash, submitted_at)
                for s, value, reason in sheet.scores
            )
            self.rows["alerts"].extend(
                (rid, pid, site, alert, submitted_at) for alert in sheet.alerts
            )
            self._audit(
                submitted_at,
                f"participant:{code}",
                "participant",
                "response.submit",
                "response",
                response_uuid,
                field="status",
                old="in_progress",
                new="submitted",
            )
        return moment + dt.timedelta(minutes=1), submitted_at

    def flush(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        for table, sql in INSERTS.items():
            conn.executemany(sql, self.rows[table])
            self.rows[table] = []
        conn.execute("COMMIT")


def build_database(path: Path, catalog, participants: int, timepoints, seed: int) -> None:
    """Build the file beside path, then rename it (an interrupted build is never reused)."""
    from pro_app.storage.db import connect
    from pro_app.storage.schema import upgrade

    building = path.with_name(path.name + ".building")
    _remove(building)
    db = connect(building)
    upgrade(db)
    conn = db.conn
    conn.execute("PRAGMA synchronous=OFF")  # a failed build is thrown away, not recovered
    conn.execute("PRAGMA cache_size=-200000")
    builder = Builder(catalog, tuple(timepoints), random.Random(seed))
    started = time.perf_counter()
    for number in range(participants):
        builder.participant(number)
        if (number + 1) % CHUNK == 0 or number + 1 == participants:
            builder.flush(conn)
            print(
                f"\r  built {number + 1:,}/{participants:,} participants"
                f" ({time.perf_counter() - started:.0f} s)",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)
    params = params_of(catalog, participants, tuple(timepoints), seed)
    conn.execute("CREATE TABLE benchmark_params (params TEXT NOT NULL)")
    conn.execute("INSERT INTO benchmark_params VALUES (?)", [json.dumps(params)])
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    _remove(path)
    os.replace(building, path)
    _remove(building)


def ensure_database(path: Path, catalog, participants: int, timepoints, seed: int) -> str:
    """Reuse path when it was built with the same parameters and schema, else build it."""
    wanted = params_of(catalog, participants, tuple(timepoints), seed)
    if path.exists():
        found = stored_params(path)
        if found is None:
            raise SystemExit(f"{path} exists and is not a benchmark database: not touching it")
        if found == wanted and not pending_migrations(path):
            return "reused"
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    build_database(path, catalog, participants, timepoints, seed)
    return f"built in {time.perf_counter() - started:.0f} s"


def contents(path: Path) -> dict:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("participants", "assessments", "answers", "scores", "audit")
        }
        for status in ("submitted", "in_progress"):
            found[status] = conn.execute(
                "SELECT COUNT(*) FROM responses WHERE status = ?", [status]
            ).fetchone()[0]
    finally:
        conn.close()
    found["file_mb"] = path.stat().st_size / MB
    return found


# --- One export in a child process -------------------------------------------------------------


def _status_mb(field: str) -> float | None:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Start VmHWM again from the current RSS (Linux 4.0+), so the export's peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args) -> int:
    """Run one export through the service and print its figures as one JSON line."""
    _app_path()
    from pro_app import create_app
    from pro_app.catalog import catalog_for
    from pro_app.database import get_db
    from pro_app.exports.model import Filters
    from pro_app.services.exporting import BINARY, SUFFIXES, prepare, write_file

    fmt = args.child
    if fmt in BINARY:  # their libraries are imported by the writer: count them as set-up
        import pandas  # noqa: F401
        import pyreadstat  # noqa: F401
    app = create_app({"DATABASE": str(args.database), "BASE_URL": BASE_URL})
    out = Path(args.output_dir) / f"export-{fmt}{SUFFIXES[fmt]}"
    read = 0

    def progress(number: int) -> None:
        nonlocal read
        read = number

    with app.app_context():
        catalog, db = catalog_for(app), get_db()
        filters = Filters(include_partial=args.include_partial)
        # On Linux, VmRSS/VmHWM: exec resets them, while getrusage's ru_maxrss carries the
        # forking parent's peak over (the parent that built the database would show).
        setup_peak = _status_mb("VmHWM") or _ru_maxrss_mb()
        own_peak = _reset_peak()
        base = _status_mb("VmRSS") or setup_peak
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        started = time.perf_counter()
        prepared = prepare(fmt, db, catalog, filters, base_url=BASE_URL, progress=progress)
        rows, _sha = write_file(out, prepared)
        seconds = time.perf_counter() - started
    export_peak = _status_mb("VmHWM") or _ru_maxrss_mb()
    figures = {
        "format": fmt,
        "records": read,
        "rows": rows,
        "seconds": seconds,
        "file_mb": out.stat().st_size / MB,
        "base_mb": base,  # resident after imports, app and database set up
        "peak_mb": max(setup_peak, export_peak),  # the process's peak, set-up included
        # The export's own share: its peak above base (if the peak could not be reset, the
        # set-up's peak hides an export smaller than it).
        "own_mb": export_peak - base if own_peak else max(0.0, export_peak - setup_peak),
        "load_1m": load,
        "memory": MEMORY.get(fmt, "streams"),
    }
    if not args.keep_files:
        out.unlink()
    print(json.dumps(figures))
    return 0


def run_format(fmt: str, database: Path, output_dir: Path, args) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        fmt,
        "--database",
        str(database),
        "--output-dir",
        str(output_dir),
    ]
    command += ["--include-partial"] if args.include_partial else []
    command += ["--keep-files"] if args.keep_files else []
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"format": fmt, "error": f"no result after {args.timeout} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-5:]
        return {"format": fmt, "error": f"exit {done.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


# --- Report ------------------------------------------------------------------------------------

HEADER = (
    f"{'format':<20} {'records':>9} {'rows':>10} {'seconds':>8} {'records/s':>10}"
    f" {'rows/s':>10} {'file MB':>8} {'base MB':>8} {'peak MB':>8} {'own MB':>7} {'load':>5}"
    "  memory"
)


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if count and seconds > 0 else "-"


def table_row(r: dict) -> str:
    if "error" in r:
        return f"{r['format']:<20} FAILED {r['error']}"
    return (
        f"{r['format']:<20} {r['records']:>9,} {r['rows']:>10,} {r['seconds']:>8.1f}"
        f" {_rate(r['records'], r['seconds']):>10} {_rate(r['rows'], r['seconds']):>10}"
        f" {r['file_mb']:>8.1f} {r['base_mb']:>8.0f} {r['peak_mb']:>8.0f}"
        f" {r['own_mb']:>7.1f} {r['load_1m'] or 0:>5.1f}  {r['memory']}"
    )


def machine() -> dict:
    def version(name: str) -> str:
        try:
            from importlib.metadata import version as installed

            return installed(name)
        except Exception:  # only for the report
            return "?"

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        total = 0.0
    return {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(total, 1),
        "load_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "pandas": version("pandas"),
        "pyreadstat": version("pyreadstat"),
    }


def measure_size(participants: int, args, catalog, formats) -> dict:
    timepoints = [t.id for t in catalog.study.timepoints][: args.timepoints_limit or None]
    if args.database and participants == args.participants:
        path = Path(args.database)
    else:
        folder = Path(tempfile.gettempdir()) / "pro-export-benchmark"
        path = folder / f"bench-{participants}p-{len(timepoints)}t-seed{args.seed}.sqlite"
    print(f"\n{participants:,} participants × {len(timepoints)} timepoints: {path}", flush=True)
    how = ensure_database(path, catalog, participants, timepoints, args.seed)
    found = contents(path)
    print(
        f"  database {how}: {found['file_mb']:,.0f} MB, {found['participants']:,} participants,"
        f" {found['assessments']:,} assessments, {found['submitted']:,} submitted and"
        f" {found['in_progress']:,} in-progress responses, {found['answers']:,} answer rows,"
        f" {found['scores']:,} scores, {found['audit']:,} audit rows"
    )
    print(
        "  (filter: "
        + ("submitted and partial responses" if args.include_partial else "submitted responses")
        + "; seconds = prepare + write_file, with the fsync and the SHA-256, as `flask export`)\n"
    )
    print(HEADER)
    results = []
    with tempfile.TemporaryDirectory(prefix="pro-export-out-") as scratch:
        output_dir = Path(args.output_dir) if args.output_dir else Path(scratch)
        output_dir.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            result = run_format(fmt, path, output_dir, args)
            results.append(result)
            print(table_row(result), flush=True)
    return {"participants": participants, "database": str(path), "contents": found, "rows": results}


def compare(small: dict, large: dict) -> list[dict]:
    """Each format's own memory at both sizes, and whether a streaming one grew."""
    print(
        f"\nThe export's own memory (peak - base, MB) at {small['participants']:,} and"
        f" {large['participants']:,} participants:"
    )
    print(f"{'format':<20} {'small':>7} {'large':>7} {'growth':>7}  verdict")
    found = []
    before = {r["format"]: r for r in small["rows"] if "error" not in r}
    for r in large["rows"]:
        if "error" in r or r["format"] not in before:
            continue
        # + 0.0: no "-0.0" in the table
        a, b = round(before[r["format"]]["own_mb"], 1) + 0.0, round(r["own_mb"], 1) + 0.0
        if r["memory"] == "in memory":
            verdict = "grows with the data (built in memory, as expected)"
        elif b - a > FLAT_MB:
            verdict = "GROWS: this format should stream"
        else:
            verdict = "flat"
        found.append({"format": r["format"], "small": a, "large": b, "verdict": verdict})
        print(f"{r['format']:<20} {a:>7.1f} {b:>7.1f} {round(b - a, 1) + 0.0:>7.1f}  {verdict}")
    return found


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python scripts/export_benchmark.py",
        description=(
            "Build (or reuse) a trial-sized SQLite database and time every export format in "
            "its own process through the export service: records read, rows written, seconds, "
            "rates, file size and peak memory, and whether the format streams."
        ),
        epilog="Timings depend on the machine; compare formats and sizes within one run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--participants", type=int, default=10_000, help="participants")
    parser.add_argument(
        "--timepoints-limit",
        type=int,
        default=0,
        metavar="N",
        help="only the first N timepoints of the study (0: all)",
    )
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        metavar="FORMAT",
        help="a format to run (repeatable; default: every format)",
    )
    parser.add_argument(
        "--database",
        metavar="FILE",
        help="the database to build or reuse (default: one per size in the temp folder)",
    )
    parser.add_argument(
        "--compare-participants",
        type=int,
        default=0,
        metavar="M",
        help="also run at M participants and compare each format's memory at both sizes",
    )
    parser.add_argument(
        "--include-partial", action="store_true", help="export in-progress responses too"
    )
    parser.add_argument("--seed", type=int, default=20261201, help="seed of the generated data")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per format")
    parser.add_argument(
        "--output-dir", metavar="DIR", help="write the exports here (default: temp)"
    )
    parser.add_argument("--keep-files", action="store_true", help="keep the exported files")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    parser.add_argument("--child", metavar="FORMAT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.participants < 1 or args.timepoints_limit < 0 or args.compare_participants < 0:
        parser.error("--participants must be positive; the limits cannot be negative")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    _app_path()
    from pro_app import create_app
    from pro_app.catalog import catalog_for
    from pro_app.services.exporting import FORMATS

    formats = args.formats or list(FORMATS)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        print(f"unknown format {', '.join(unknown)} (known: {', '.join(FORMATS)})", file=sys.stderr)
        return 2
    app = create_app({"TESTING": True})  # the definitions as the app loads them
    catalog = catalog_for(app)
    env = machine()
    print(
        f"ePRO export benchmark {env['when']}: {env['cpus']} CPUs ({env['cpu']}),"
        f" {env['memory_gb']} GB, load {env['load_1m']}, Python {env['python']},"
        f" SQLite {env['sqlite']}, pandas {env['pandas']}, pyreadstat {env['pyreadstat']}"
    )
    results: dict = {"environment": env, "sizes": []}
    sizes = [args.participants]
    if args.compare_participants:
        sizes.insert(0, args.compare_participants)
    for participants in sizes:
        results["sizes"].append(measure_size(participants, args, catalog, formats))
    if len(results["sizes"]) == 2:
        results["comparison"] = compare(*results["sizes"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nfigures written to {args.json}")
    failed = [r for s in results["sizes"] for r in s["rows"] if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
