"""Take, verify, restore and prune backups: the steps behind `flask backup` and `restore`."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from pyrage import x25519

from . import crypto, manifest, retention, snapshot
from .manifest import TEMP_PREFIX

LOCK_NAME = ".pro-backup.lock"
CONTACTS_NOTE = (
    "contact details are in the same snapshot (table contacts), each field encrypted with "
    "PRO_CONTACT_KEY; that key is not in this backup"
)


class BackupError(Exception):
    """A backup, verify, restore or prune that did not succeed, with the reasons."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


def app_version() -> str:
    try:
        return metadata.version("pro-app")
    except metadata.PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def locked(folder: Path):
    """Hold the backup folder's lock (one backup or prune at a time, e.g. cron overlaps)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / LOCK_NAME, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"another backup or prune is running in {folder}; try again when it ends"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_leftovers(folder: Path) -> None:
    """Temp files of a backup that was killed (the lock is held, so none is in use)."""
    for path in folder.glob(TEMP_PREFIX + "*"):
        path.unlink(missing_ok=True)


def _temp(folder: Path, suffix: str) -> Path:
    return folder / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{suffix}"


@dataclass
class Taken:
    path: Path
    manifest_path: Path
    manifest: dict
    seconds: float


def take(
    *,
    live: Path,
    folder: Path,
    study: str,
    recipient_text: str | None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Taken:
    """Snapshot `live`, check the copy, seal it to the recipient, write the manifest.

    Nothing is called good (no manifest) unless every check passed; the plain copy is
    removed whatever happens. Call inside `locked(folder)`.
    """
    to = crypto.recipient(recipient_text)
    clock = time.monotonic()
    _remove_leftovers(folder)
    started = now()
    final = folder / manifest.archive_name(study, started)
    while final.exists():  # one backup per second at most: names carry the second
        time.sleep(1.0 - started.microsecond / 1e6)
        started = now()
        final = folder / manifest.archive_name(study, started)
    raw, sealed_temp = _temp(folder, ".sqlite"), _temp(folder, ".age")
    try:
        try:
            snapshot.take(live, raw)
        except FileNotFoundError as exc:
            raise BackupError(str(exc)) from None
        except sqlite3.Error as exc:
            raise BackupError(f"the database {live} cannot be copied ({exc})") from None
        report = snapshot.check(raw)
        if not report.ok:
            raise BackupError("the snapshot failed its checks; no backup was kept", report.problems)
        fd = os.open(sealed_temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with open(raw, "rb") as source, os.fdopen(fd, "wb") as target:
            sealed = crypto.seal(source, target, to)
            target.flush()
            os.fsync(target.fileno())
        raw.unlink()
        on_disk = crypto.sha256_of(sealed_temp)
        if on_disk != sealed.encrypted_sha256:
            raise BackupError(
                "the encrypted file on disk differs from what was written (disk error?); "
                "no backup was kept"
            )
        data = manifest.build(
            file=final.name,
            study=study,
            started=started,
            finished=now(),
            report=report,
            sealed=sealed,
            recipient=str(to),
            app_version=app_version(),
            contacts_note=CONTACTS_NOTE,
        )
        os.replace(sealed_temp, final)
        manifest.sync_folder(folder)
        target_manifest = manifest.manifest_path(final)
        manifest.write_manifest(target_manifest, data)
    finally:
        raw.unlink(missing_ok=True)
        sealed_temp.unlink(missing_ok=True)
    return Taken(final, target_manifest, data, time.monotonic() - clock)


@dataclass
class Checked:
    """The result of opening a backup: problems (none when good), notes, the copy's report."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: dict | None = None
    report: snapshot.Report | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def open_backup(
    archive: Path,
    identities: list[x25519.Identity],
    into: Path,
    *,
    manifest_file: Path | None = None,
    known_migrations: list[str] | None = None,
) -> Checked:
    """Decrypt `archive` into the new file `into` and check it against its manifest."""
    result = Checked()
    manifest_at = manifest_file or manifest.manifest_path(archive)
    if manifest_at.is_file():
        try:
            result.manifest = manifest.read(manifest_at)
        except (OSError, ValueError) as exc:
            result.problems.append(f"the manifest {manifest_at} cannot be read ({exc})")
    elif manifest_file is not None:
        result.problems.append(f"there is no manifest at {manifest_at}")
    else:
        result.notes.append(
            f"no manifest beside the file ({manifest_at.name}): content checked only"
        )
    expected = result.manifest or {}
    digest = crypto.sha256_of(archive)
    if expected and expected.get("sha256", {}).get("encrypted") != digest:
        result.problems.append(
            f"SHA-256 mismatch: {archive.name} has {digest}, the manifest says "
            f"{expected.get('sha256', {}).get('encrypted')}: the file was changed or cut off, "
            "or the manifest belongs to another backup"
        )
    fd = os.open(into, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with open(archive, "rb") as source, os.fdopen(fd, "wb") as target:
            size, raw_digest = crypto.unseal(source, target, identities)
            target.flush()
            os.fsync(target.fileno())
    except crypto.OpenError as exc:
        message = str(exc)
        if expected.get("recipient") and expected["recipient"] not in crypto.public_keys(
            identities
        ):
            message += (
                f"; the manifest says it was encrypted to {expected['recipient']}, and the "
                f"identity given is for {', '.join(crypto.public_keys(identities))}"
            )
        result.problems.append(message)
        return result
    if expected:
        if expected.get("sha256", {}).get("raw") != raw_digest:
            result.problems.append("the decrypted snapshot's SHA-256 differs from the manifest")
        if expected.get("sizes", {}).get("raw") != size:
            result.problems.append(
                f"the decrypted snapshot has {size} bytes, the manifest says "
                f"{expected.get('sizes', {}).get('raw')}"
            )
    report = snapshot.check(into)
    result.report = report
    result.problems += report.problems
    if expected and report.ok:
        if expected.get("row_counts") != report.row_counts:
            result.problems.append("the row counts differ from the manifest's")
        if expected.get("audit", {}).get("head") != report.audit_head:
            result.problems.append("the audit chain's head differs from the manifest's")
    if known_migrations is not None and report.ok:
        missing = [m for m in known_migrations if m not in report.migrations]
        unknown = [m for m in report.migrations if m not in known_migrations]
        if missing:
            result.notes.append(
                f"{len(missing)} migration(s) of this app version are not applied in the "
                "backup; `flask --app pro_app db upgrade` applies them after a restore"
            )
        if unknown:
            result.notes.append(
                "the backup has migration(s) this app version does not know "
                f"({', '.join(unknown)}): restore it with the app version that made it "
                "(app_version in the manifest)"
            )
    return result


def restore(
    archive: Path,
    identities: list[x25519.Identity],
    target: Path,
    *,
    live: Path,
    manifest_file: Path | None = None,
    known_migrations: list[str] | None = None,
) -> Checked:
    """Decrypt and check `archive`, then move it to the new path `target` (never over a file)."""
    target = target.absolute()
    if _same_file(target, live):
        raise BackupError(
            f"{target} is the live database (PRO_DATABASE): restore to a new path, then point "
            "PRO_DATABASE at it"
        )
    for path in (target, Path(f"{target}-wal"), Path(f"{target}-shm"), Path(f"{target}-journal")):
        if path.exists() or path.is_symlink():
            raise BackupError(f"{path} already exists: restore to a path that does not exist")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = _temp(target.parent, ".sqlite")
    try:
        result = open_backup(
            archive,
            identities,
            work,
            manifest_file=manifest_file,
            known_migrations=known_migrations,
        )
        if not result.ok:
            raise BackupError("the backup failed its checks; nothing was restored", result.problems)
        try:
            os.link(work, target)  # fails rather than replace a file made meanwhile
        except FileExistsError:
            raise BackupError(f"{target} appeared while restoring; nothing was replaced") from None
        manifest.sync_folder(target.parent)
    finally:
        work.unlink(missing_ok=True)
    return result


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return False


@dataclass
class Pruned:
    plan: retention.Plan
    kept: list[manifest.Found]
    deleted: list[manifest.Found]
    unverified: list[manifest.Found]


def prune(
    folder: Path, study: str, *, daily: int, weekly: int, monthly: int, dry_run: bool
) -> Pruned:
    """Delete good backups that the retention rule does not keep (call inside `locked`).

    Only files named like this study's backups are considered; a backup without a good
    manifest is never deleted (it is listed so someone can look at it).
    """
    found = manifest.find(folder, study)
    good = [f for f in found if f.good]
    the_plan = retention.plan([f.at for f in good], daily=daily, weekly=weekly, monthly=monthly)
    doomed = [f for f in good if f.at not in the_plan.keep]
    if not dry_run:
        for item in doomed:
            item.path.unlink(missing_ok=True)
            item.manifest.unlink(missing_ok=True)
        if doomed:
            manifest.sync_folder(folder)
    kept = [f for f in good if f.at in the_plan.keep]
    return Pruned(the_plan, kept, doomed, [f for f in found if not f.good])
