"""`flask backup` (take, verify, prune, new-key) and `flask restore`."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import click
import sqlite_utils
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from ..backup import crypto, jobs, manifest
from ..storage.schema import migrations

KEEP = click.IntRange(min=0)


def _folder() -> Path:
    """PRO_BACKUP_DIR, relative to the app root like PRO_DATABASE."""
    folder = Path(current_app.config["BACKUP_DIR"])
    if not folder.is_absolute():
        folder = Path(current_app.instance_path).parent / folder
    return folder


def _known_migrations() -> list[str]:
    return [m.name for m in migrations.pending(sqlite_utils.Database(memory=True))]


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return str(count)


def _fail(exc: jobs.BackupError) -> click.ClickException:
    for problem in exc.problems:
        click.echo(f"error {problem}", err=True)
    return click.ClickException(str(exc))


def _keep_options(command):
    for name, default, period in (
        ("monthly", 12, "month"),
        ("weekly", 8, "ISO week"),
        ("daily", 14, "day"),
    ):
        command = click.option(
            f"--keep-{name}",
            type=KEEP,
            default=default,
            show_default=True,
            help=f"Keep the newest backup of this many {period}s (UTC).",
        )(command)
    return command


def _report_prune(result: jobs.Pruned, dry_run: bool) -> None:
    verb = "Would delete" if dry_run else "Deleted"
    for item in result.deleted:
        click.echo(f"{verb} {item.path.name}")
    for item in result.kept:
        reasons = ", ".join(result.plan.keep[item.at])
        click.echo(f"Keep {item.path.name} ({reasons})")
    for item in result.unverified:
        click.echo(
            f"Not touched {item.path.name}: it has no good manifest (a backup that did not "
            "finish, or a manifest removed by hand); check it with `backup verify`",
            err=True,
        )
    click.echo(f"{verb} {len(result.deleted)} backup(s); {len(result.kept)} kept.")


@click.group("backup", cls=AppGroup, invoke_without_command=True)
@_keep_options
@click.option("--no-prune", is_flag=True, help="Do not delete old backups after this one.")
@with_appcontext
@click.pass_context
def backup_group(ctx, keep_daily, keep_weekly, keep_monthly, no_prune):
    """Take an encrypted, checked backup of the database now (safe while the app runs).

    Copies PRO_DATABASE with SQLite's online backup (answers and the encrypted contact
    details are in that one file), checks the copy (integrity_check, foreign_key_check, the
    audit chain), compresses it and encrypts it to PRO_BACKUP_RECIPIENT (age), and writes
    <study>-<UTC time>.sqlite.gz.age and a .manifest.json into PRO_BACKUP_DIR. Then deletes
    older backups that the --keep-* rule does not keep. Exits non-zero, keeping nothing,
    when a check fails.
    """
    if ctx.invoked_subcommand is not None:
        return
    config = current_app.config
    folder = _folder()
    try:
        crypto.recipient(config.get("BACKUP_RECIPIENT"))
        with jobs.locked(folder):
            taken = jobs.take(
                live=Path(config["DATABASE"]),
                folder=folder,
                study=config["STUDY"],
                recipient_text=config.get("BACKUP_RECIPIENT"),
            )
            data = taken.manifest
            click.echo(f"Backup written: {taken.path}")
            click.echo(
                f"  {_size(data['sizes']['raw'])} database, {_size(data['sizes']['encrypted'])}"
                f" compressed and encrypted; {data['audit']['rows']} audit rows;"
                f" {taken.seconds:.1f} s"
            )
            click.echo(f"  manifest: {taken.manifest_path}")
            click.echo(f"  encrypted to {data['recipient']}")
            if not no_prune:
                result = jobs.prune(
                    folder,
                    config["STUDY"],
                    daily=keep_daily,
                    weekly=keep_weekly,
                    monthly=keep_monthly,
                    dry_run=False,
                )
                _report_prune(result, dry_run=False)
    except crypto.BackupKeyError as exc:
        raise click.ClickException(str(exc)) from None
    except jobs.BackupError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise click.ClickException(f"the backup failed: {exc}") from None


def _identity_option(command):
    return click.option(
        "-i",
        "--identity",
        required=True,
        type=click.Path(exists=True, dir_okay=False),
        help="age identity file (AGE-SECRET-KEY-1...); keep it off the server.",
    )(command)


def _manifest_option(command):
    return click.option(
        "--manifest",
        "manifest_file",
        type=click.Path(exists=True, dir_okay=False),
        help="The backup's manifest, when it is not beside FILE.",
    )(command)


def _identities(path: str):
    try:
        return crypto.read_identities(path)
    except crypto.BackupKeyError as exc:
        raise click.ClickException(str(exc)) from None


def _print_checked(result: jobs.Checked) -> None:
    for note in result.notes:
        click.echo(f"note {note}", err=True)
    if result.report is None:
        return
    report = result.report
    if report.audit_rows:
        click.echo(f"  audit chain intact: {report.audit_rows} rows, head {report.audit_head}")
    else:
        click.echo("  audit chain intact: no rows yet")
    click.echo(f"  schema: {report.migrations[-1] if report.migrations else 'none'}")
    filled = {t: n for t, n in report.row_counts.items() if n and not t.startswith("_")}
    width = max((len(t) for t in filled), default=0)
    for table, count in filled.items():
        click.echo(f"  {table:<{width}} {count:>9} rows")
    empty = len(report.row_counts) - len(filled) - ("_sqlite_migrations" in report.row_counts)
    if empty:
        click.echo(f"  ({empty} other tables are empty)")


@backup_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_identity_option
@_manifest_option
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, exists=True),
    help="Where to decrypt for the checks (default: the system temp folder); needs room "
    "for the whole database, and is emptied afterwards.",
)
def backup_verify(file, identity, manifest_file, work_dir):
    """Decrypt backup FILE in a temp folder and check it; the live database is not touched.

    Checks the SHA-256 against the manifest beside FILE (when there is one), then
    integrity_check, foreign_key_check and the audit chain of the decrypted copy, and
    prints its row counts. Exits non-zero with the reasons when anything is wrong.
    """
    identities = _identities(identity)
    try:
        with tempfile.TemporaryDirectory(prefix="pro-verify-", dir=work_dir) as work:
            result = jobs.open_backup(
                Path(file),
                identities,
                Path(work) / "check.sqlite",
                manifest_file=Path(manifest_file) if manifest_file else None,
                known_migrations=_known_migrations(),
            )
    except OSError as exc:
        raise click.ClickException(f"the backup could not be checked: {exc}") from None
    if not result.ok:
        raise _fail(jobs.BackupError(f"{file} failed verification", result.problems))
    click.echo(f"{file} is good.")
    _print_checked(result)


@backup_group.command("prune")
@_keep_options
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted and kept.")
def backup_prune(keep_daily, keep_weekly, keep_monthly, dry_run):
    """Delete old backups in PRO_BACKUP_DIR that the --keep-* rule does not keep.

    Keeps the newest backup of each of the last --keep-daily days, --keep-weekly ISO weeks
    and --keep-monthly months (UTC), and always the newest good one. Only files named like
    this study's backups, with a good manifest, are ever deleted.
    """
    folder = _folder()
    try:
        with jobs.locked(folder):
            result = jobs.prune(
                folder,
                current_app.config["STUDY"],
                daily=keep_daily,
                weekly=keep_weekly,
                monthly=keep_monthly,
                dry_run=dry_run,
            )
    except jobs.BackupError as exc:
        raise _fail(exc) from None
    _report_prune(result, dry_run)


@backup_group.command("new-key", with_appcontext=False)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the identity to this new file (owner-only) instead of standard output.",
)
def backup_new_key(output):
    """Make an age key pair: the identity (private) and its public key for PRO_BACKUP_RECIPIENT.

    Run this on your own machine, not on the server: the identity decrypts every backup.
    Same format as `age-keygen`, so the `age` tool can use the identity too.
    """
    identity, public = crypto.new_identity()
    text = (
        f"# created: {manifest.utc_text(dt.datetime.now(dt.UTC))}\n"
        f"# public key: {public}\n{identity}\n"
    )
    if output:
        try:
            fd = os.open(output, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            raise click.ClickException(f"{output} exists; choose a new file name") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        click.echo(f"Identity written to {output}; keep it off the server.", err=True)
    else:
        click.echo(text, nl=False)
    click.echo(f"Public key (PRO_BACKUP_RECIPIENT): {public}", err=True)


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(dir_okay=False),
    help="New database file to create (must not exist, and not be PRO_DATABASE).",
)
@_identity_option
@_manifest_option
@with_appcontext
def restore(file, target, identity, manifest_file):
    """Decrypt backup FILE into a new database file and check it before it appears there.

    Never writes over a file: the copy is decrypted beside PATH under a temp name, checked
    like `backup verify`, and only then given the name PATH.
    """
    identities = _identities(identity)
    try:
        result = jobs.restore(
            Path(file),
            identities,
            Path(target),
            live=Path(current_app.config["DATABASE"]),
            manifest_file=Path(manifest_file) if manifest_file else None,
            known_migrations=_known_migrations(),
        )
    except jobs.BackupError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise click.ClickException(f"nothing was restored: {exc}") from None
    click.echo(f"Restored {file} to {target}; it passed every check.")
    _print_checked(result)
    click.echo("Next:")
    click.echo(f"  1. Stop the app, then set PRO_DATABASE={Path(target).absolute()}")
    click.echo("     (in instance/config.py or the service's environment).")
    click.echo("  2. flask --app pro_app db upgrade    # applies migrations newer than the backup")
    click.echo("  3. flask --app pro_app doctor        # checks the settings and the database")
    click.echo(
        "  4. Set PRO_CONTACT_KEY to the key used before, or contact details stay unreadable."
    )
    click.echo("  5. Start the app.")
