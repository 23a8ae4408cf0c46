"""Backup file names, the manifest beside each backup, and atomic writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".sqlite.gz.age"
MANIFEST_SUFFIX = ".manifest.json"
FORMAT = "pro-app-backup/1"
STAMP = "%Y%m%dT%H%M%SZ"
NAME = re.compile(r"^(?P<study>[A-Za-z0-9_-]+)-(?P<at>\d{8}T\d{6}Z)\.sqlite\.gz\.age$")
TEMP_PREFIX = ".pro-backup-"  # never matches NAME, so pruning cannot take a temp file


def study_label(study: str) -> str:
    """The study part of a file name: the study id, or a YAML path's stem, made file-safe."""
    label = Path(str(study)).stem if str(study).endswith((".yaml", ".yml")) else str(study)
    return re.sub(r"[^A-Za-z0-9_-]", "_", label) or "study"


def archive_name(study: str, at: dt.datetime) -> str:
    return f"{study_label(study)}-{at.astimezone(dt.UTC).strftime(STAMP)}{SUFFIX}"


def manifest_path(archive: Path) -> Path:
    """`<study>-<time>.sqlite.gz.age` → `<study>-<time>.manifest.json`, in the same folder."""
    name = archive.name
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else archive.stem
    return archive.with_name(stem + MANIFEST_SUFFIX)


@dataclass(frozen=True)
class Found:
    """A backup file of this study in the backup folder, and whether it is a good one."""

    path: Path
    at: dt.datetime
    manifest: Path
    good: bool


def parse_name(name: str) -> tuple[str, dt.datetime] | None:
    match = NAME.match(name)
    if match is None:
        return None
    at = dt.datetime.strptime(match["at"], STAMP).replace(tzinfo=dt.UTC)
    return match["study"], at


def find(folder: Path, study: str) -> list[Found]:
    """Backups of `study` in `folder`, oldest first; other files are not ours and ignored."""
    found = []
    if not folder.is_dir():
        return found
    label = study_label(study)
    for path in folder.iterdir():
        parsed = parse_name(path.name)
        if parsed is None or parsed[0] != label or not path.is_file():
            continue
        manifest = manifest_path(path)
        found.append(Found(path, parsed[1], manifest, _good(manifest, path)))
    return sorted(found, key=lambda f: f.at)


def _good(manifest: Path, archive: Path) -> bool:
    try:
        data = read(manifest)
    except (OSError, ValueError):
        return False
    return data.get("verified") is True and data.get("file") == archive.name


def read(path: Path) -> dict:
    """Read a manifest (ValueError when it is not one)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a backup manifest ({FORMAT})")
    return data


def build(
    *,
    file: str,
    study: str,
    started: dt.datetime,
    finished: dt.datetime,
    report,
    sealed,
    recipient: str,
    app_version: str,
    contacts_note: str,
) -> dict:
    """The manifest of a backup whose copy passed every check (no personal data in it)."""
    return {
        "format": FORMAT,
        "file": file,
        "study": study_label(study),
        "started_at": utc_text(started),
        "finished_at": utc_text(finished),
        "app_version": app_version,
        "schema": {
            "migrations": report.migrations,
            "version": report.migrations[-1] if report.migrations else None,
        },
        "sizes": {
            "raw": sealed.raw_bytes,
            "compressed": sealed.compressed_bytes,
            "encrypted": sealed.encrypted_bytes,
        },
        "sha256": {"raw": sealed.raw_sha256, "encrypted": sealed.encrypted_sha256},
        "row_counts": report.row_counts,
        "audit": {"rows": report.audit_rows, "head": report.audit_head},
        "checks": {"integrity_check": "ok", "foreign_key_check": "ok", "audit_chain": "intact"},
        "verified": True,
        "compression": "gzip",
        "encryption": "age (X25519), pyrage",
        "recipient": recipient,
        "contact_details": contacts_note,
    }


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file, fsync, rename over `path`, fsync the folder."""
    temp = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def write_manifest(path: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode("utf-8"))


def sync_folder(folder: Path) -> None:
    """fsync a folder so that a rename in it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
