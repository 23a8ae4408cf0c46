"""`flask sync`: deliver the outbox to the trial database (REDCap, FHIR, webhook)."""

from __future__ import annotations

import json
import signal
import threading

import click
from flask import current_app
from flask.cli import with_appcontext

from ..staff.accounts import by_email
from ..startup import refuse_unsafe
from ..sync import queue
from ..sync.config import TargetConfigError, parse_targets
from ..sync.reconcile import reconcile, totals
from ..sync.worker import Worker
from .common import catalog_or_exit, upgraded_db


def _targets(only: tuple[str, ...] = ()):
    try:
        targets = parse_targets(current_app.config.get("SYNC_TARGETS"))
    except TargetConfigError as exc:
        raise click.ClickException(f"PRO_SYNC_TARGETS has problems:\n{exc}") from None
    if not targets:
        raise click.ClickException(
            "no sync targets are configured; set PRO_SYNC_TARGETS (see the README, 'Sync')"
        )
    names = [t.name for t in targets]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise click.ClickException(
            f"unknown target {', '.join(unknown)} (configured: {', '.join(names)})"
        )
    return tuple(t for t in targets if not only or t.name in only)


def _worker(only=()) -> Worker:
    refuse_unsafe(current_app)  # links and identifiers must carry the real base URL
    return Worker(upgraded_db(), catalog_or_exit(), _targets(only), current_app.config["BASE_URL"])


def _report(passes) -> bool:
    trouble = False
    for result in passes:
        click.echo(result.line())
        for problem in result.problems:
            click.echo(f"  - {problem}")
        trouble = trouble or bool(result.problems or result.dead)
    return trouble


@click.group("sync")
def sync_group():
    """Deliver submitted responses to the trial database (PRO_SYNC_TARGETS)."""


TARGET_OPTION = click.option(
    "--target", "only", multiple=True, help="Only this target (repeatable; default: all)."
)


@sync_group.command("run")
@TARGET_OPTION
@with_appcontext
def run(only):
    """One pass: send every due message to every target, then stop (for cron).

    Exits 1 when a target refused its check or a message was parked as dead.
    """
    if _report(_worker(only).run_once()):
        raise SystemExit(1)


@sync_group.command("worker")
@TARGET_OPTION
@click.option(
    "--interval",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds to wait between passes.",
)
@with_appcontext
def worker(only, interval):
    """Send continuously; stop cleanly on SIGTERM or Ctrl-C (the current send finishes)."""
    stop = threading.Event()

    def ask_to_stop(signum, _frame):
        click.echo(f"{signal.Signals(signum).name}: stopping after the current message", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)
    sender = _worker(only)
    click.echo(f"sync worker {sender.ident}: targets {', '.join(sender.adapters)}", err=True)
    while not stop.is_set():
        for result in sender.run_once(stop):
            if result.sent or result.retry or result.dead or result.problems or result.error:
                click.echo(result.line(), err=True)
        stop.wait(interval)
    click.echo("sync worker stopped", err=True)


@sync_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def status(as_json):
    """Per target: pending, dead and sent counts, oldest pending, last success and error."""
    rows = queue.summary(upgraded_db(), _targets())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['target']} ({row['type']}): pending {row['pending']}, dead {row['dead']},"
            f" sent {row['sent']}; oldest pending {row['oldest_pending'] or '-'};"
            f" last success {row['last_success'] or '-'}"
        )
        if row["last_error"]:
            click.echo(f"  last error {row['last_error_at']}: {row['last_error']}")
    for dead in queue.dead_messages(upgraded_db()):
        click.echo(
            f"  dead: {dead['target']} {dead['study_code']} {dead['timepoint']}"
            f" {dead['questionnaire']} v{dead['version']} {dead['message_id']}:"
            f" {dead['last_error']}"
        )


@sync_group.command("retry")
@click.option("--target", help="Only dead messages of this target.")
@click.option("--message", "message_id", help="Only this message id.")
@click.option("--by", "email", required=True, help="E-mail of the data manager or admin.")
@with_appcontext
def retry(target, message_id, email):
    """Put dead messages back in the queue (audited with --by)."""
    if target:
        _targets((target,))
    staff = by_email(upgraded_db(), email)
    if staff is None or staff["role"] not in ("data_manager", "admin") or staff["disabled_at"]:
        raise click.ClickException(f"{email} is not an active data manager or admin account")
    count = queue.retry_dead(
        upgraded_db(),
        target=target,
        message_id=message_id,
        actor=staff["email"],
        role=staff["role"],
    )
    click.echo(f"{count} dead message(s) queued again; run 'flask --app pro_app sync run'")


@sync_group.command("reconcile")
@TARGET_OPTION
@click.option(
    "--read-back/--no-read-back",
    default=True,
    show_default=True,
    help="Read acknowledged responses back from REDCap and FHIR targets and compare.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@with_appcontext
def reconcile_command(only, read_back, as_json):
    """Per record and target: acknowledged, sent (no acknowledgement yet), pending, dead
    or differs (the target holds other values, or none). Exits 1 if any is dead or differs."""
    sender = _worker(only)
    lines = reconcile(upgraded_db(), sender.catalog, sender, sender.targets, read_back)
    for line in lines:
        if as_json:
            click.echo(json.dumps(line.__dict__, ensure_ascii=False))
        else:
            click.echo(
                f"{line.target}\t{line.study_code}\t{line.timepoint}\t{line.questionnaire}"
                f"\tv{line.version}\t{line.message_id}\t{line.state}\t{line.detail}"
            )
    for name, counts in totals(lines).items():
        click.echo(f"{name}: " + ", ".join(f"{state} {n}" for state, n in counts.items()), err=True)
    if any(line.state in ("dead", "differs") for line in lines):
        raise SystemExit(1)
