"""`flask doctor`: check that this instance is fit to run a trial, one line per check."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..catalog import catalog_for
from ..database import get_db
from ..storage.db import utc_now
from .doctor_checks import (
    CHECKS,
    Result,
    audit_result,
    backup_result,
    config_results,
    definitions,
    disk_result,
    durability,
    fail,
    foreign_keys,
    integrity,
    migration_state,
    ok,
    smtp_result,
    sync_results,
    write_lock,
)

# The command --------------------------------------------------------------------------------


def run_checks(app, skip: set[str], timeout: float) -> list[Result]:
    """Run every check not skipped, in order; a check that crashes is a failure."""
    results: list[Result] = []
    path = Path(app.config["DATABASE"])
    state: dict = {}

    def database() -> list[Result]:
        if not path.is_file():
            return [
                fail("database", f"no database at {path}", "run 'flask --app pro_app db upgrade'")
            ]
        try:
            db = get_db()
            db.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as error:
            return [
                fail(
                    "database",
                    f"{path} cannot be opened: {error}",
                    "check that PRO_DATABASE names the app's database; restore a backup if "
                    "the file is damaged",
                )
            ]
        state["db"] = db
        size = path.stat().st_size / 1_000_000
        return [ok("database", f"{path} opens ({size:.1f} MB)")]

    def with_db(name, check):
        def run():
            if "db" not in state:
                return [fail(name, "not checked: the database did not open", "see 'database'")]
            return [check(state["db"])]

        return run

    steps = {
        "config": lambda: config_results(app.config),
        "database": database,
        "integrity": with_db("integrity", integrity),
        "foreign-keys": with_db("foreign-keys", foreign_keys),
        "migrations": with_db("migrations", migration_state),
        "durability": with_db("durability", durability),
        "writable": with_db("writable", write_lock),
        "definitions": lambda: [definitions(app)],
        "smtp": lambda: [smtp_result(app.config, timeout)],
        "sync": lambda: sync_results(
            app.config, lambda: catalog_for(app), str(app.config.get("BASE_URL")), timeout, skip
        ),
        "disk": lambda: [disk_result(path.parent if path.parent.is_dir() else Path("."))],
        "backup": lambda: [
            backup_result(backup_folder(app), utc_now(), bool(app.config.get("DEMO")))
        ],
        "audit": with_db("audit", audit_result),
    }
    for name in CHECKS:
        # The database is opened even when its line is skipped: other checks need it.
        if name in skip and name != "database":
            continue
        started = time.perf_counter()
        try:
            found = steps[name]()
        except Exception as error:  # noqa: BLE001 - a crashing check is a failed check
            found = [
                fail(
                    name,
                    f"the check itself failed: {type(error).__name__}: {error}",
                    "report this output",
                )
            ]
        ms = (time.perf_counter() - started) * 1000
        for result in found:
            result.ms = round(ms / len(found), 1)
            if result.check not in skip:
                results.append(result)
    return results


def backup_folder(app) -> Path:
    folder = Path(app.config.get("BACKUP_DIR") or "instance/backups")
    return folder if folder.is_absolute() else Path(app.instance_path).parent / folder


def _skip_names(ctx, param, values) -> set[str]:
    unknown = [v for v in values if v not in CHECKS and not v.startswith("sync:")]
    if unknown:
        raise click.BadParameter(
            f"unknown check {', '.join(unknown)}; the checks are {', '.join(CHECKS)} "
            "(and sync:<target>)"
        )
    return set(values)


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--skip",
    multiple=True,
    callback=_skip_names,
    metavar="NAME",
    help=f"Leave a check out (repeatable): {', '.join(CHECKS)}, or sync:<target>.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 120),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the SMTP server and each sync target.",
)
@with_appcontext
def doctor(as_json: bool, skip: set[str], timeout: float):
    """Check configuration, database, definitions, e-mail, sync, disk, backups and audit.

    Prints one line per check, 'ok', 'warn' or 'FAIL', with what to do about a failure, and
    exits 1 if any check fails. Nothing is sent and nothing is changed.
    """
    results = run_checks(current_app._get_current_object(), skip, timeout)
    failed = any(r.status == "fail" for r in results)
    if as_json:
        click.echo(json.dumps({"ok": not failed, "checks": [asdict(r) for r in results]}, indent=2))
    else:
        for result in results:
            click.echo(result.line())
        counts = {s: sum(r.status == s for r in results) for s in ("ok", "warn", "fail")}
        click.echo(f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} failed")
    if failed:
        click.get_current_context().exit(1)
