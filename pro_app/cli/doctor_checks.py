"""The checks `flask doctor` runs, each returning a Result: ok, warn or fail with what to do.

Pure of the command line: the backup and deployment parts call some of them too.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import smtplib
import socket
import sqlite3
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import sqlite_utils

from .. import startup
from ..catalog import catalog_for
from ..domain.errors import DefinitionError
from ..health import writable
from ..storage import audit
from ..storage.db import parse_stamp
from ..storage.schema import migrations
from ..sync.config import TargetConfigError, parse_targets
from ..sync.transport import Refused, Retry

CHECKS = (
    "config",
    "database",
    "integrity",
    "foreign-keys",
    "migrations",
    "durability",
    "writable",
    "definitions",
    "smtp",
    "sync",
    "disk",
    "backup",
    "audit",
)
GB = 1_000_000_000
BACKUP_MAX_AGE = dt.timedelta(hours=26)
LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL"}


@dataclass
class Result:
    check: str
    status: str  # ok, warn or fail
    detail: str
    fix: str = ""
    ms: float = 0.0

    def line(self) -> str:
        text = f"{LABELS[self.status]:<4}  {self.check:<14}  {self.detail}"
        return text + (f"; {self.fix}" if self.fix else "")


def ok(check: str, detail: str) -> Result:
    return Result(check, "ok", detail)


def fail(check: str, detail: str, fix: str) -> Result:
    return Result(check, "fail", detail, fix)


def warn(check: str, detail: str, fix: str = "") -> Result:
    return Result(check, "warn", detail, fix)


# Configuration and database ----------------------------------------------------------------


def config_results(config) -> list[Result]:
    found = startup.problems(config)
    if not found:
        return [ok("config", "secret key, base URL, debug and contact key are fit to serve")]
    relaxed = startup.exempt(config)  # the demo may run like this; a trial may not
    status = "warn" if relaxed else "fail"
    return [Result("config", status, f"PRO_{p.setting} {p.problem}", p.fix) for p in found]


def integrity(db) -> Result:
    fix = "stop the app, keep a copy of the file and restore the newest verified backup"
    try:
        found = [row[0] for row in db.conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as error:
        return fail("integrity", f"the file cannot be read: {error}", fix)
    if found == ["ok"]:
        return ok("integrity", "PRAGMA integrity_check: ok")
    return fail("integrity", f"{len(found)} problem(s): {'; '.join(found[:3])}", fix)


def foreign_keys(db) -> Result:
    found = db.conn.execute("PRAGMA foreign_key_check").fetchall()
    if not found:
        return ok("foreign-keys", "every reference points to an existing row")
    shown = "; ".join(f"{table} row {rowid} -> {parent}" for table, rowid, parent, _ in found[:3])
    return fail(
        "foreign-keys",
        f"{len(found)} row(s) point to missing rows: {shown}",
        "keep a copy of the file and find out how the rows were removed before changing anything",
    )


def migration_state(db) -> Result:
    pending = [m.name for m in migrations.pending(db)]
    # Every migration this code has is pending on an empty database.
    known = {m.name for m in migrations.pending(sqlite_utils.Database(memory=True))}
    unknown = [m.name for m in migrations.applied(db) if m.name not in known]
    if unknown:
        return fail(
            "migrations",
            f"the database has migrations this code does not know: {', '.join(unknown)}",
            "run the version of the app that made them (the database is newer than the code)",
        )
    if pending:
        return fail(
            "migrations",
            f"{len(pending)} pending: {', '.join(pending)}",
            "run 'flask --app pro_app db upgrade' (after a backup)",
        )
    return ok("migrations", f"current ({len(known)} of {len(known)} applied)")


def durability(db) -> Result:
    """WAL, synchronous=FULL, foreign keys and a busy timeout on this connection."""
    conn = db.conn
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    busy = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    wrong = []
    if str(mode).lower() != "wal":
        wrong.append(f"journal_mode is {mode}, not wal")
    if sync != 2:
        wrong.append(f"synchronous is {sync}, not 2 (FULL)")
    if keys != 1:
        wrong.append("foreign_keys is off")
    if busy < 5000:
        wrong.append(f"busy_timeout is {busy} ms, under 5000")
    if wrong:
        return fail(
            "durability",
            "; ".join(wrong),
            "keep the database on a local disk that supports WAL (not a network share) and "
            "open it through pro_app.storage.db.connect",
        )
    return ok("durability", "journal_mode=wal, synchronous=FULL, foreign_keys=on")


def write_lock(db) -> Result:
    try:
        writable(db)
    except sqlite3.Error as error:
        return fail(
            "writable",
            f"cannot write: {error}",
            "check the file's and folder's owner and permissions, free disk, and that no "
            "process holds a long write lock",
        )
    return ok("writable", "took the write lock and wrote (rolled back)")


# Definitions, e-mail and sync ---------------------------------------------------------------


def definitions(app) -> Result:
    try:
        catalog = catalog_for(app)
    except DefinitionError as error:
        return fail(
            "definitions",
            f"{len(error.problems)} problem(s); first: {error.problems[0]}",
            "run 'flask --app pro_app questionnaires check' for the full list",
        )
    return ok(
        "definitions",
        f"study {catalog.study.id} and {len(catalog.questionnaires)} questionnaires load",
    )


def smtp_result(config, timeout: float) -> Result:
    host = config.get("SMTP_HOST")
    if not host:
        return warn("smtp", "e-mail off (PRO_SMTP_HOST is empty)", "set it to send links by e-mail")
    if not config.get("MAIL_FROM"):
        return fail("smtp", "PRO_MAIL_FROM is empty", "set the sender address of e-mails")
    port = int(config.get("SMTP_PORT") or 25)
    steps = []
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as server:
            server.ehlo()
            if config.get("SMTP_STARTTLS"):
                server.starttls(context=ssl.create_default_context())
                server.ehlo()
                steps.append("STARTTLS")
            if config.get("SMTP_USER"):
                server.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
                steps.append("login")
            server.noop()
    except smtplib.SMTPAuthenticationError as error:
        return fail(
            "smtp",
            f"{host}:{port} refused the login ({error.smtp_code})",
            "check PRO_SMTP_USER and PRO_SMTP_PASSWORD",
        )
    except (smtplib.SMTPException, OSError) as error:
        return fail(
            "smtp",
            f"{host}:{port} cannot be used: {type(error).__name__}: {error}",
            "check PRO_SMTP_HOST, PRO_SMTP_PORT and PRO_SMTP_STARTTLS, and the firewall",
        )
    done = ", ".join(["EHLO", *steps, "NOOP"])
    return ok("smtp", f"{host}:{port} answers ({done}; nothing sent)")


def _reach_webhook(target, timeout: float) -> str:
    """Open a TCP (and TLS) connection: a webhook takes only signed messages, so none is sent."""
    parts = urlsplit(target.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname, port), timeout=timeout) as raw:
        if parts.scheme == "https":
            context = ssl.create_default_context()
            with context.wrap_socket(raw, server_hostname=parts.hostname):
                return "TCP and TLS connect (the webhook is not called)"
    return "TCP connect (the webhook is not called)"


def sync_results(
    config, catalog_of, base_url: str, timeout: float, skip: set[str] = frozenset()
) -> list[Result]:
    from ..sync.worker import ADAPTERS

    try:
        targets = parse_targets(config.get("SYNC_TARGETS"))
    except TargetConfigError as error:
        return [fail("sync", str(error).replace("\n", "; "), "fix PRO_SYNC_TARGETS")]
    if not targets:
        return [ok("sync", "no targets (PRO_SYNC_TARGETS is empty)")]
    results = []
    for target in targets:
        name = f"sync:{target.name}"
        if name in skip:
            continue
        quick = target.model_copy(update={"timeout_seconds": min(target.timeout_seconds, timeout)})
        try:
            if target.type == "webhook":
                results.append(
                    ok(name, f"{target.url} reachable: {_reach_webhook(quick, timeout)}")
                )
                continue
            catalog = catalog_of()
            problems = ADAPTERS[target.type](quick, catalog, base_url).check()
        except DefinitionError:
            results.append(
                fail(name, "not checked: the definitions do not load", "see 'definitions'")
            )
            continue
        except Refused as error:
            results.append(fail(name, f"refused: {error}", "check the token and the URL"))
            continue
        except (Retry, OSError) as error:
            results.append(
                fail(name, f"unreachable: {error}", "check the URL, the network and the target")
            )
            continue
        if problems:
            results.append(
                fail(
                    name,
                    f"reachable, but {len(problems)} problem(s): {'; '.join(problems[:3])}",
                    "change the target to match (see README, 'Sync'); nothing is sent until then",
                )
            )
        else:
            results.append(ok(name, f"{target.type} at {target.url} answers and matches"))
    return results


# Disk, backups, audit ---------------------------------------------------------------------


def disk_status(total: int, free: int) -> str:
    """fail under 1 GB or 5 % free, warn under 5 GB or 15 %, else ok."""
    share = free / total if total else 0
    if free < 1 * GB or share < 0.05:
        return "fail"
    if free < 5 * GB or share < 0.15:
        return "warn"
    return "ok"


def disk_result(folder: Path) -> Result:
    usage = shutil.disk_usage(folder)
    status = disk_status(usage.total, usage.free)
    detail = (
        f"{usage.free / GB:.1f} GB free of {usage.total / GB:.1f} GB "
        f"({100 * usage.free / usage.total:.0f} %) where the database is"
    )
    fix = "" if status == "ok" else "free space or move the database to a larger disk"
    return Result("disk", status, detail, fix)


def _manifest(path: Path) -> tuple[dt.datetime, bool] | None:
    """(finished, good) from a manifest; good: verified, and its backup file is there."""
    try:
        data = json.loads(path.read_text("utf-8"))
        finished = parse_stamp(str(data["finished_at"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if finished.tzinfo is None:  # not UTC with a Z: cannot be compared with the clock
        return None
    archive = data.get("file")
    present = not archive or (path.parent / Path(str(archive)).name).is_file()
    return finished, data.get("verified") is True and present


def backup_result(folder: Path, now: dt.datetime, demo: bool) -> Result:
    fix = "run 'flask --app pro_app backup' and check the job that runs it every night"
    read = {p.name: _manifest(p) for p in sorted(folder.glob("*.manifest.json"))}
    verified = sorted((m[0], name) for name, m in read.items() if m and m[1])
    unreadable = sorted(name for name, m in read.items() if m is None)
    note = f" ({len(unreadable)} unreadable manifest(s): {', '.join(unreadable[:3])})"
    note = note if unreadable else ""
    bad = "warn" if demo else "fail"
    if not verified:
        return Result("backup", bad, f"no verified backup in {folder}{note}", fix)
    finished, name = verified[-1]
    age = now - finished
    hours = age.total_seconds() / 3600
    detail = f"newest verified backup {name} finished {hours:.1f} h ago{note}"
    if age > BACKUP_MAX_AGE:
        limit = int(BACKUP_MAX_AGE.total_seconds() // 3600)
        return Result("backup", bad, f"{detail}, more than {limit} h", fix)
    newer = [n for n, m in read.items() if m and not m[1] and m[0] > finished]
    if newer or unreadable:
        extra = f"; a newer backup was not verified: {', '.join(newer)}" if newer else ""
        return warn("backup", detail + extra, "look at the backup job's output")
    return ok("backup", detail)


def audit_result(db) -> Result:
    count, problems = audit.verify(db)
    if problems:
        return fail(
            "audit",
            f"the hash chain is broken: {len(problems)} problem(s); first: {problems[0]}",
            "run 'flask --app pro_app audit verify' for every row; keep a copy of the database "
            "and report it (do not repair rows)",
        )
    return ok("audit", f"hash chain intact ({count} rows)")
